package passes

import (
	"strings"

	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/ir/onnxpb"
)

// AnnotateShapes records the element type and symbolic shape of every
// intermediate value the inference knows as the graph's value_info, so
// that ONNX Runtime plans memory on shapes it can compare. ORT's own
// inference leaves the dims of a reshape, an expand or a loop's output
// unnamed; its allocation planner never matches an unnamed dim, keeps every
// such buffer on its free list and scans the whole list for each new value
// (quadratic in the graph: 10 of the 13 CPU-seconds it took to open
// train.onnx of the qwen2.5-0.5b preset). With value_info the dims carry
// names (graph input dims, products such as "2*batch_size", or "?N" for a
// size known only to equal other "?N" sizes), buffers are reused and the
// list stays short. It runs last: a later rewrite would leave stale types.
func AnnotateShapes(s *State) error {
	AnnotateGraphShapes(s.Model.Graph)
	return nil
}

// AnnotateGraphShapes replaces g's value_info with the inferred types of
// its node outputs; an existing entry is kept for a value the inference
// does not know. Graph inputs and outputs keep their declared types.
func AnnotateGraphShapes(g *ir.Graph) {
	si := inferShapes(g)
	dt := inferDTypes(g)
	declared := map[string]bool{}
	for _, v := range g.Inputs {
		declared[v.Name] = true
	}
	for _, v := range g.Outputs {
		declared[v.Name] = true
	}
	for _, t := range g.Initializers {
		declared[t.Name] = true
	}
	old := map[string]*ir.ValueInfo{}
	for _, v := range g.ValueInfo {
		old[v.Name] = v
	}
	var vi []*ir.ValueInfo
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o == "" || declared[o] {
				continue
			}
			declared[o] = true // a value is annotated once
			d, okD := si.dims[o]
			t, okT := dt[o]
			if !okD || !okT || t == ir.Undefined {
				if v, ok := old[o]; ok {
					vi = append(vi, v)
				}
				continue
			}
			dims := make([]ir.Dim, len(d))
			for i, tok := range d {
				if v, ok := isNum(tok); ok && v >= 0 {
					dims[i] = ir.Dim{Value: v}
				} else {
					dims[i] = ir.Sym(tok)
				}
			}
			for _, i := range emptiableReduced(si, n) {
				dims[i] = ir.Dim{Value: -1}
			}
			vi = append(vi, &ir.ValueInfo{Name: o, Type: ir.TensorType(t, dims...)})
		}
	}
	g.ValueInfo = vi
}

// emptiableReduced lists the kept dims of a Reduce* node's output whose
// input dim is a size the inference only knows by a "?N" token (unknownSize),
// so may be 0 (an empty attention block): ONNX Runtime then keeps the dim at 0
// rather than 1, so its annotation names no size at all.
func emptiableReduced(si *shapeInfo, n *ir.Node) []int {
	if !strings.HasPrefix(n.OpType, "Reduce") || n.AttrInt("keepdims", 1) == 0 || len(n.Outputs) == 0 {
		return nil
	}
	in, ok := si.dims[n.Input(0)]
	axes, okA := si.axes(n)
	if !ok || !okA {
		return nil
	}
	if len(axes) == 0 && n.AttrInt("noop_with_empty_axes", 0) == 0 {
		for i := range in {
			axes = append(axes, int64(i))
		}
	}
	var out []int
	for _, a := range axes {
		if i, ok := normAxis(a, len(in)); ok && unknownSize(in[i]) {
			out = append(out, i)
		}
	}
	return out
}

// sameTypeOps produce a first output of their first input's element type.
var sameTypeOps = map[string]bool{
	"Identity": true, "Neg": true, "Abs": true, "Sqrt": true, "Reciprocal": true, "Exp": true, "Log": true,
	"Sigmoid": true, "Tanh": true, "Cos": true, "Sin": true, "Erf": true, "Relu": true, "Softmax": true,
	"LogSoftmax": true, "Floor": true, "Ceil": true, "Round": true, "Sign": true, "Trilu": true,
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Pow": true, "Max": true, "Min": true, "Sum": true,
	"Mean": true, "Mod": true, "MatMul": true, "Gemm": true, "Einsum": true, "Clip": true,
	"Reshape": true, "Expand": true, "Transpose": true, "Slice": true, "Concat": true, "Squeeze": true,
	"Unsqueeze": true, "Flatten": true, "Pad": true, "Tile": true, "Gather": true, "GatherElements": true,
	"GatherND": true, "ScatterND": true, "ScatterElements": true, "CumSum": true, "Dropout": true,
	"ReduceSum": true, "ReduceMean": true, "ReduceMax": true, "ReduceMin": true, "ReduceProd": true,
	"ReduceL2": true, "ReduceLogSumExp": true, "ReduceSumSquare": true, "Range": true, "LayerNormalization": true,
	"SimplifiedLayerNormalization": true, "RMSNormalization": true,
}

// boolOps produce bool.
var boolOps = map[string]bool{
	"Equal": true, "Less": true, "Greater": true, "LessOrEqual": true, "GreaterOrEqual": true,
	"Not": true, "And": true, "Or": true, "Xor": true, "IsNaN": true, "IsInf": true,
}

// inferDTypes infers the element type of node outputs in the default
// domain (a Loop's from its body); other values are left out.
func inferDTypes(g *ir.Graph) map[string]ir.DType {
	dt := newTypeScope(g, nil).types // the graph inputs' and initializers'
	for _, n := range g.Nodes {
		dtypeNode(dt, n)
	}
	return dt
}

func dtypeNode(dt map[string]ir.DType, n *ir.Node) {
	if n.Domain != "" || len(n.Outputs) == 0 || n.Outputs[0] == "" {
		return
	}
	set := func(t ir.DType) {
		if t != ir.Undefined {
			dt[n.Outputs[0]] = t
		}
	}
	in := func(i int) ir.DType {
		if n.Input(i) == "" {
			return ir.Undefined
		}
		return dt[n.Input(i)]
	}
	switch {
	case sameTypeOps[n.OpType]:
		set(in(0))
		return
	case boolOps[n.OpType]:
		set(ir.Bool)
		return
	}
	switch n.OpType {
	case "Cast":
		set(ir.DType(n.AttrInt("to", 0)))
	case "CastLike":
		set(in(1))
	case "Where":
		set(in(1))
	case "Shape", "Size", "NonZero", "ArgMax", "ArgMin":
		set(ir.Int64)
	case "Constant":
		switch {
		case n.Attr("value") != nil && n.Attr("value").GetT() != nil:
			set(ir.DType(n.Attr("value").GetT().GetDataType()))
		case n.Attr("value_int") != nil, n.Attr("value_ints") != nil:
			set(ir.Int64)
		case n.Attr("value_float") != nil, n.Attr("value_floats") != nil:
			set(ir.Float32)
		}
	case "ConstantOfShape":
		if a := n.Attr("value"); a != nil && a.GetT() != nil {
			set(ir.DType(a.GetT().GetDataType()))
		} else {
			set(ir.Float32)
		}
	case "Split":
		for _, o := range n.Outputs {
			if t := in(0); o != "" && t != ir.Undefined {
				dt[o] = t
			}
		}
	case "TopK":
		set(in(0))
		if len(n.Outputs) > 1 && n.Outputs[1] != "" {
			dt[n.Outputs[1]] = ir.Int64
		}
	case "If":
		// Each output has the type of the branches' (the then branch's).
		var outs []*onnxpb.ValueInfoProto
		for _, attr := range []string{"then_branch", "else_branch"} {
			a := n.Attr(attr)
			if a == nil || a.GetG() == nil {
				return
			}
			for _, bn := range a.GetG().Node {
				dtypeNode(dt, &ir.Node{Name: bn.GetName(), OpType: bn.GetOpType(), Domain: bn.GetDomain(),
					Inputs: bn.Input, Outputs: bn.Output, Attrs: bn.Attribute})
			}
			if outs == nil {
				outs = a.GetG().GetOutput()
			}
		}
		for k, o := range n.Outputs {
			if o != "" && k < len(outs) {
				if t := ir.DType(outs[k].GetType().GetTensorType().GetElemType()); t != ir.Undefined {
					dt[o] = t
				}
			}
		}
	case "Loop":
		a := n.Attr("body")
		if a == nil || a.GetG() == nil {
			return
		}
		body := a.GetG()
		for i, bi := range body.Input {
			switch {
			case i == 0:
				dt[bi.GetName()] = ir.Int64
			case i == 1:
				dt[bi.GetName()] = ir.Bool
			default:
				if t := in(i); t != ir.Undefined {
					dt[bi.GetName()] = t
				}
			}
		}
		for _, t := range body.Initializer {
			dt[t.GetName()] = ir.DType(t.GetDataType())
		}
		for _, bn := range body.Node {
			dtypeNode(dt, &ir.Node{Name: bn.GetName(), OpType: bn.GetOpType(), Domain: bn.GetDomain(),
				Inputs: bn.Input, Outputs: bn.Output, Attrs: bn.Attribute})
		}
		// Outputs: the carried values, then the scan outputs, each of the
		// body output after the condition.
		for k := 1; k < len(body.Output) && k-1 < len(n.Outputs); k++ {
			if t, ok := dt[body.Output[k].GetName()]; ok && n.Outputs[k-1] != "" {
				dt[n.Outputs[k-1]] = t
			}
		}
	}
}
