// Package connect turns the user's --index value into a retrieval.Searcher:
// an http(s) URL gives a /retrieve client (dartc's server or Search-R1's),
// anything else is the path of a local BM25 index file. The agent loop and
// the CLI go through Open so both accept the same values.
//
// Invariant: the returned Searcher is safe for concurrent use.
package connect
