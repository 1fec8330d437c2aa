// Package compiler drives dartc's compilation: it parses an exported model,
// runs the pass pipelines (pipeline.go: the passes in order, with the
// constraints between them checked at start-up) and writes the artifacts
// directory described by package manifest.
//
// Invariants:
//   - The output directory appears complete or not at all: everything is
//     written into a temporary sibling directory that is renamed into place.
//   - Weight bytes of external data are never read: emitted graphs reference
//     the source's data file through a hard link in the output directory
//     (ONNX Runtime refuses data reached through ".." or a symbolic link).
//     Across file systems, or with CopyWeights, the file is copied.
//   - With Options.Check, ir.Check runs after every pass and a violation
//     names the pass that broke it.
package compiler
