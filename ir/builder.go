package ir

import (
	"fmt"
	"strconv"

	"github.com/dartc/dartc/ir/onnxpb"
	"google.golang.org/protobuf/proto"
)

// Builder appends nodes and constants to a graph under unique names.
// Appended nodes may be consumed by earlier ones: call TopoSort when done.
type Builder struct {
	G     *Graph
	names map[string]bool
}

// NewBuilder indexes every name already used in g.
func NewBuilder(g *Graph) *Builder {
	b := &Builder{G: g, names: make(map[string]bool, 2*len(g.Nodes)+len(g.Initializers))}
	for _, v := range g.Inputs {
		b.names[v.Name] = true
	}
	for _, t := range g.Initializers {
		b.names[t.Name] = true
	}
	for _, n := range g.Nodes {
		b.names[n.Name] = true
		for _, o := range n.Outputs {
			b.names[o] = true
		}
	}
	return b
}

// Unique returns name, or name with a numeric suffix, never used before in
// the graph, and reserves it.
func (b *Builder) Unique(name string) string {
	if !b.names[name] {
		b.names[name] = true
		return name
	}
	for i := 1; ; i++ {
		n := name + "_" + strconv.Itoa(i)
		if !b.names[n] {
			b.names[n] = true
			return n
		}
	}
}

// Reserve marks names as used (for example names of inputs about to be
// added).
func (b *Builder) Reserve(names ...string) {
	for _, n := range names {
		b.names[n] = true
	}
}

// Op appends a one-output node named name (made unique) and returns its
// output's name, "<node name>_output_0" as the TorchScript exporter names
// them.
func (b *Builder) Op(name, opType string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	return b.OpN(name, opType, inputs, 1, attrs...)[0]
}

// OpN appends a node with n outputs and returns their names.
func (b *Builder) OpN(name, opType string, inputs []string, n int, attrs ...*onnxpb.AttributeProto) []string {
	node := &Node{Name: b.Unique(name), OpType: opType, Inputs: inputs, Attrs: attrs}
	for i := 0; i < n; i++ {
		node.Outputs = append(node.Outputs, b.Unique(node.Name+"_output_"+strconv.Itoa(i)))
	}
	b.G.Nodes = append(b.G.Nodes, node)
	return node.Outputs
}

// Add appends a fully formed node, making its name unique; its output
// names must be fresh.
func (b *Builder) Add(n *Node) *Node {
	n.Name = b.Unique(n.Name)
	b.Reserve(n.Outputs...)
	b.G.Nodes = append(b.G.Nodes, n)
	return n
}

// Const adds t as an initializer under a unique name and returns the name.
func (b *Builder) Const(t *Tensor) string {
	t.Name = b.Unique(t.Name)
	b.G.Initializers = append(b.G.Initializers, t)
	return t.Name
}

// Ints adds a 1-D int64 constant.
func (b *Builder) Ints(name string, v ...int64) string {
	return b.Const(NewTensorI64(name, []int64{int64(len(v))}, v))
}

// Scalar adds a rank-0 constant of type dt.
func (b *Builder) Scalar(name string, dt DType, v float64) string {
	return b.Const(NewScalar(name, dt, v))
}

// AttrInt makes an INT attribute.
func AttrInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

// AttrFloat makes a FLOAT attribute.
func AttrFloat(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_FLOAT.Enum(), F: proto.Float32(v)}
}

// AttrInts makes an INTS attribute.
func AttrInts(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

// AttrString makes a STRING attribute.
func AttrString(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_STRING.Enum(), S: []byte(v)}
}

// AttrTensor makes a TENSOR attribute holding an inline tensor.
func AttrTensor(name string, t *Tensor) *onnxpb.AttributeProto {
	tp, err := TensorToPB(t, EmitOptions{})
	if err != nil {
		panic("ir: AttrTensor: " + err.Error()) // inline tensors always convert
	}
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: tp}
}

// AttrGraph makes a GRAPH attribute (the body of an If, Loop or Scan)
// from g. Its nodes may read values of the enclosing graph by name; its
// constants must be inline.
func AttrGraph(name string, g *Graph) (*onnxpb.AttributeProto, error) {
	gp, err := graphToPB(g, EmitOptions{})
	if err != nil {
		return nil, fmt.Errorf("ir: subgraph %s: %w", g.Name, err)
	}
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_GRAPH.Enum(), G: gp}, nil
}
