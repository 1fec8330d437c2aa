// Package manifest describes the compiled artifacts directory: the contract
// between `dartc compile` and everything that runs the compiled graphs.
//
// The runtime, the trainer and the evaluators read only manifest.json: every
// graph's file, input and output names, dtypes and shapes, the adapter
// tensors, the KV-cache layout, the roles and the tag strings. They never
// guess from the graphs themselves.
package manifest
