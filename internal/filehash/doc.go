// Package filehash digests files: the fingerprints that runs, evaluations and
// analyses record so that a resume never mixes inputs.
package filehash
