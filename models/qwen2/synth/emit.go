package synth

import (
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/dartc/dartc/internal/float16"
	"github.com/dartc/dartc/ir/onnxpb"
	"google.golang.org/protobuf/proto"
)

// emitter appends nodes to a graph, naming them the way the selected exporter
// does. TorchScript: /<module path>/<Op>[_n] with outputs <name>_output_0 and
// Constant nodes for constants. Dynamo: node_<Op>_<n> with outputs val_<n>,
// constants as val_<n> initializers, and pkg.torch.onnx.name_scopes metadata.
type emitter struct {
	form     LinearForm
	elem     onnxpb.TensorProto_DataType
	graph    *onnxpb.GraphProto
	scope    []string       // module path components, e.g. model, layers.0, self_attn
	perScope map[string]int // TorchScript: uses of /scope/Op
	seq      int            // Dynamo: global node counter
	fxNames  map[string]int // Dynamo: uses of an fx node name
	fx       string         // Dynamo: fx node the current nodes belong to
}

func newEmitter(form LinearForm, elem onnxpb.TensorProto_DataType) *emitter {
	return &emitter{form: form, elem: elem, graph: &onnxpb.GraphProto{Name: proto.String("main_graph")},
		perScope: map[string]int{}, fxNames: map[string]int{}}
}

func (e *emitter) push(component string) { e.scope = append(e.scope, component) }
func (e *emitter) pop()                  { e.scope = e.scope[:len(e.scope)-1] }

// fxName returns the next fx-style local name for base (base, base_1, …).
func (e *emitter) fxName(base string) string {
	n := e.fxNames[base]
	e.fxNames[base] = n + 1
	if n == 0 {
		return base
	}
	return base + "_" + strconv.Itoa(n)
}

// nameScopes renders the module path as the dynamo exporter's metadata value,
// a Python list literal of cumulative dotted paths ending in the fx node name.
func (e *emitter) nameScopes(local string) string {
	parts := []string{"''"}
	for i := range e.scope {
		parts = append(parts, "'"+strings.Join(e.scope[:i+1], ".")+"'")
	}
	parts = append(parts, "'"+local+"'")
	return "[" + strings.Join(parts, ", ") + "]"
}

// node appends op(inputs) and returns its output's name; out, when not
// empty, names the output (a graph output such as logits).
func (e *emitter) node(op string, inputs []string, attrs []*onnxpb.AttributeProto, out string) string {
	return e.emit(op, false, inputs, attrs, out)
}

// withFx attributes every node emitted by fn to one fx node named after base
// (base, base_1, …): the dynamo exporter expands one aten op, such as
// aten.linear, into several ONNX nodes that share its name scope.
func (e *emitter) withFx(base string, fn func()) {
	saved := e.fx
	e.fx = e.fxName(base)
	defer func() { e.fx = saved }()
	fn()
}

// finish is node for the last node of a withFx group: the dynamo exporter
// names it node_<fx> and its output <fx>.
func (e *emitter) finish(op string, inputs []string, attrs []*onnxpb.AttributeProto, out string) string {
	return e.emit(op, true, inputs, attrs, out)
}

func (e *emitter) emit(op string, final bool, inputs []string, attrs []*onnxpb.AttributeProto, out string) string {
	n := &onnxpb.NodeProto{OpType: proto.String(op), Input: inputs, Attribute: attrs}
	switch e.form {
	case Dynamo:
		local := e.fx
		if local == "" {
			local = e.fxName(strings.ToLower(op))
		}
		if final && e.fx != "" {
			n.Name = proto.String("node_" + local)
			if out == "" {
				out = local
			}
		} else {
			n.Name = proto.String("node_" + op + "_" + strconv.Itoa(e.seq))
			if out == "" {
				out = "val_" + strconv.Itoa(e.seq)
			}
		}
		e.seq++
		n.MetadataProps = []*onnxpb.StringStringEntryProto{{
			Key: proto.String("pkg.torch.onnx.name_scopes"), Value: proto.String(e.nameScopes(local)),
		}}
	default:
		key := "/" + strings.Join(append(append([]string{}, e.scope...), op), "/")
		k := e.perScope[key]
		e.perScope[key] = k + 1
		name := key
		if k > 0 {
			name += "_" + strconv.Itoa(k)
		}
		n.Name = proto.String(name)
		if out == "" {
			out = name + "_output_0"
		}
	}
	n.Output = []string{out}
	e.graph.Node = append(e.graph.Node, n)
	return out
}

// constant emits a small constant tensor: a Constant node (TorchScript, Gemm)
// or an inline initializer (Dynamo).
func (e *emitter) constant(t *onnxpb.TensorProto) string {
	if e.form == Dynamo {
		name := "val_" + strconv.Itoa(e.seq)
		e.seq++
		t.Name = proto.String(name)
		e.graph.Initializer = append(e.graph.Initializer, t)
		return name
	}
	return e.node("Constant", nil, []*onnxpb.AttributeProto{{
		Name: proto.String("value"), Type: onnxpb.AttributeProto_TENSOR.Enum(), T: t,
	}}, "")
}

// ints is a 1-D int64 constant; scalar is a 0-D one.
func (e *emitter) ints(v ...int64) string {
	return e.constant(&onnxpb.TensorProto{Dims: []int64{int64(len(v))},
		DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)), Int64Data: v})
}

func (e *emitter) scalarInt(v int64) string {
	return e.constant(&onnxpb.TensorProto{DataType: proto.Int32(int32(onnxpb.TensorProto_INT64)), Int64Data: []int64{v}})
}

// floats is a constant of the model's dtype with the given dims.
func (e *emitter) floats(dims []int64, v ...float64) string {
	t := &onnxpb.TensorProto{Dims: dims, DataType: proto.Int32(int32(e.elem))}
	switch e.elem {
	case onnxpb.TensorProto_DOUBLE:
		t.DoubleData = v
	case onnxpb.TensorProto_FLOAT16, onnxpb.TensorProto_BFLOAT16:
		for _, x := range v {
			h := float16.FromFloat32(float32(x))
			if e.elem == onnxpb.TensorProto_BFLOAT16 {
				h = float16.BFloat16FromFloat32(float32(x))
			}
			t.RawData = binary.LittleEndian.AppendUint16(t.RawData, h)
		}
	default:
		for _, x := range v {
			t.FloatData = append(t.FloatData, float32(x))
		}
	}
	return e.constant(t)
}

func attrInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INT.Enum(), I: proto.Int64(v)}
}

func attrInts(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: onnxpb.AttributeProto_INTS.Enum(), Ints: v}
}

func attrs(a ...*onnxpb.AttributeProto) []*onnxpb.AttributeProto { return a }

// valueInfo declares a graph input or output; a dim is a fixed size when
// it parses as an integer and a symbolic dim_param otherwise.
func valueInfo(name string, elem onnxpb.TensorProto_DataType, dims ...string) *onnxpb.ValueInfoProto {
	shape := &onnxpb.TensorShapeProto{}
	for _, d := range dims {
		dim := &onnxpb.TensorShapeProto_Dimension{}
		if n, err := strconv.ParseInt(d, 10, 64); err == nil {
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: n}
		} else {
			dim.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d}
		}
		shape.Dim = append(shape.Dim, dim)
	}
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{
		Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{
			ElemType: proto.Int32(int32(elem)), Shape: shape,
		}},
	}}
}
