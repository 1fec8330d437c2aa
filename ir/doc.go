// Package ir is dartc's in-memory ONNX graph: models, graphs, nodes, typed
// values and initializers, with parsing and emission through the project's
// own protobuf bindings (ir/onnxpb).
//
// Invariants (checked by Check):
//   - Values are named by strings, as in ONNX; every node output name is
//     defined once (SSA) and no node output shadows a graph input or an
//     initializer.
//   - Nodes are in topological order: every input is a graph input, an
//     initializer, or the output of an earlier node ("" marks an omitted
//     optional input).
//   - Graph inputs and outputs carry a tensor type with an element type and
//     a rank.
//
// Weights: an initializer stored in external data is a reference (file,
// offset, length) and its bytes are never read unless a pass calls
// Tensor.Bytes. Parsing validates every reference (relative location that
// stays inside the model's folder, existing file, offset+length within it)
// without reading the data. Emission writes small tensors inline and keeps
// external references pointing at the source data file, which the output
// directory links to instead of copying.
//
// Attributes stay protobuf messages (onnxpb.AttributeProto): the IR does not
// model them, it offers typed getters and constructors.
package ir
