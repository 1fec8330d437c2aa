package passes

import (
	"encoding/binary"

	"github.com/dartc/dartc/ir"
)

// FoldConstants replaces the small integer and boolean sub-graphs whose
// values the symbolic shape inference computes exactly — shape arithmetic
// on constants and on statically known dims, as exporters write it when
// they do not fold constants themselves (TorchScript with
// do_constant_folding=False, dynamo without its optimizer) — by
// initializers. Slice axes, reduction axes and Reshape targets then read as
// constants, which the gradient rules need; the nodes left without readers
// are collected by dead-code. Weights are never read: only values of at
// most foldMaxElements entries, tracked by inferShapes, are folded.
func FoldConstants(s *State) error {
	g := s.Model.Graph
	si := inferShapes(g)
	dtypes := valueTypes(g)
	isOutput := outputNames(g)
	b := s.Builder()
	rename := map[string]string{}
	kept := g.Nodes[:0]
	for _, n := range g.Nodes {
		for i, in := range n.Inputs {
			if r, ok := rename[in]; ok {
				n.Inputs[i] = r
			}
		}
		if t := foldable(n, si, dtypes, isOutput); t != nil {
			t.Name = n.Outputs[0] + "/folded"
			rename[n.Outputs[0]] = b.Const(t)
			continue
		}
		kept = append(kept, n)
	}
	g.Nodes = kept
	for _, n := range g.Nodes {
		renameSubgraphReads(n, rename)
	}
	return nil
}

const foldMaxElements = 64

// foldable returns the constant that replaces n's single output, or nil.
func foldable(n *ir.Node, si *shapeInfo, dtypes map[string]ir.DType, isOutput map[string]bool) *ir.Tensor {
	if n.OpType == "Constant" || len(n.Outputs) != 1 || isOutput[n.Outputs[0]] || (n.Domain != "" && n.Domain != "ai.onnx") || nondeterministic[n.OpType] {
		return nil
	}
	for _, a := range n.Attrs {
		if a.GetG() != nil || len(a.GetGraphs()) > 0 {
			return nil
		}
	}
	out := n.Outputs[0]
	vals, ok := si.constInts(out)
	if !ok || len(vals) > foldMaxElements {
		return nil
	}
	toks, ok := si.dims[out]
	if !ok {
		return nil
	}
	dims := make([]int64, len(toks))
	count := int64(1)
	for i, t := range toks {
		d, ok := isNum(t)
		if !ok {
			return nil
		}
		dims[i] = d
		count *= d
	}
	if count != int64(len(vals)) {
		return nil
	}
	dt := dtypes[out]
	t := &ir.Tensor{DType: dt, Dims: dims, Raw: []byte{}}
	for _, v := range vals {
		switch dt {
		case ir.Int64:
			t.Raw = binary.LittleEndian.AppendUint64(t.Raw, uint64(v))
		case ir.Int32:
			t.Raw = binary.LittleEndian.AppendUint32(t.Raw, uint32(int32(v)))
		case ir.Bool:
			if v != 0 { // ONNX: any non-zero value is true
				t.Raw = append(t.Raw, 1)
			} else {
				t.Raw = append(t.Raw, 0)
			}
		default:
			return nil
		}
	}
	return t
}

// valueTypes propagates element types through the graph, as far as the ops
// that shape arithmetic uses go.
func valueTypes(g *ir.Graph) map[string]ir.DType {
	dt := map[string]ir.DType{}
	for _, in := range g.Inputs {
		if in.Type != nil {
			dt[in.Name] = in.Type.DType
		}
	}
	for _, t := range g.Initializers {
		dt[t.Name] = t.DType
	}
	for _, n := range g.Nodes {
		if len(n.Outputs) == 0 {
			continue
		}
		var t ir.DType
		switch n.OpType {
		case "Constant":
			switch {
			case n.Attr("value") != nil && n.Attr("value").GetT() != nil:
				t = ir.DType(n.Attr("value").GetT().GetDataType())
			case n.Attr("value_int") != nil || n.Attr("value_ints") != nil:
				t = ir.Int64
			case n.Attr("value_float") != nil || n.Attr("value_floats") != nil:
				t = ir.Float32
			}
		case "Cast":
			t = ir.DType(n.AttrInt("to", 0))
		case "CastLike":
			t = dt[n.Input(1)]
		case "Shape", "Size", "NonZero", "ArgMax", "ArgMin":
			t = ir.Int64
		case "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Xor", "IsNaN", "IsInf":
			t = ir.Bool
		case "Where":
			t = dt[n.Input(1)]
		case "ConstantOfShape":
			t = ir.Float32
			if a := n.Attr("value"); a != nil && a.GetT() != nil {
				t = ir.DType(a.GetT().GetDataType())
			}
		default:
			if len(n.Inputs) > 0 {
				t = dt[n.Input(0)]
			}
		}
		if t != ir.Undefined {
			dt[n.Outputs[0]] = t
		}
	}
	return dt
}
