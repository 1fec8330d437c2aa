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
// Tensor.Bytes. Parsing validates every reference, the initializers' and
// those inside node attributes (a Constant's tensor, an If or Loop body's
// initializers): a relative location that stays inside the model's folder,
// an existing file, offset+length within it; it does not read the data.
// Tensor.Bytes refuses a file that has since become shorter. Emission writes small tensors inline and keeps
// external references pointing at the source data file, which the output
// directory links to instead of copying.
//
// Attributes stay protobuf messages (onnxpb.AttributeProto): the IR does not
// model them, it offers typed getters and constructors.
//
// What a Load → Save round trip keeps: the graph (nodes, attributes, inputs,
// outputs, value_info, initializers), doc strings, opsets, functions, and
// the metadata of the model, graphs and nodes. It does not keep the
// metadata_props of tensors and value infos, dimension denotations, or
// training_info and quantization_annotation, which no exporter this
// compiler reads writes.
package ir
