// Package names holds the names of the graph inputs and outputs that dartc's
// passes create and the runtime feeds or fetches. They belong to the passes
// that create them; the manifest package publishes them as part of the
// artifacts contract. The package imports nothing, so both sides can use it
// without an import cycle.
package names
