// Package passes holds dartc's graph rewrites, one file per pass. A pass is
// a function over a State: the model being rewritten plus what earlier
// passes found (the matched targets, the role input, the adapter inputs).
//
// The order in which passes run, and the constraints between them, live in
// the compiler's pipeline table (package compiler), not here. Every pass
// leaves the graph valid for ir.Check: the pipeline checks after each pass
// under --check and in tests.
//
// Passes never read weight bytes of external tensors; shapes come from
// initializer dims and declared value types.
package passes
