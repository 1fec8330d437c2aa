package passes

import (
	"fmt"
	"math"
	"slices"

	"github.com/dartc/dartc/ir"
)

// ExpandFunctions replaces the opset-23 function ops RMSNormalization,
// RotaryEmbedding and Attention with the standard ops of their function
// bodies, so that the autodiff can differentiate them node by node. It runs
// on the whole-sequence graphs (log-probs, training); decode keeps ORT's
// fused kernels. Forms the training graphs cannot use — a past cache, an
// interleaved rotation, a qk_matmul output — are refused with the reason.
func ExpandFunctions(s *State) error {
	g := s.Model.Graph
	var expand []*ir.Node
	for _, n := range g.Nodes {
		if n.Domain == "" && (n.OpType == "RMSNormalization" || n.OpType == "RotaryEmbedding" || n.OpType == "Attention") {
			expand = append(expand, n)
		}
	}
	if len(expand) == 0 {
		return nil
	}
	if s.Model.OpsetVersion("") < 15 {
		s.Model.SetOpset("", 15) // the expansions use CastLike
	}
	si := inferShapes(g)
	drop := map[*ir.Node]bool{}
	for _, n := range expand {
		e := &expander{s: s, b: s.Builder(), n: n, si: si, tag: nodeTag(n) + "/expanded"}
		var err error
		switch n.OpType {
		case "RMSNormalization":
			err = e.rmsNorm()
		case "RotaryEmbedding":
			err = e.rotary()
		case "Attention":
			err = e.attention()
		}
		if err != nil {
			return err
		}
		drop[n] = true
	}
	g.Nodes = slices.DeleteFunc(g.Nodes, func(n *ir.Node) bool { return drop[n] })
	return ir.TopoSort(g)
}

type expander struct {
	s   *State
	b   *ir.Builder
	n   *ir.Node
	si  *shapeInfo
	tag string
}

func (e *expander) op(name, opType string, inputs ...string) string {
	return e.b.Op(e.tag+"/"+name, opType, inputs)
}

func (e *expander) opA(name, opType string, inputs []string, attrs ...*onnxAttr) string {
	return e.b.Op(e.tag+"/"+name, opType, inputs, attrs...)
}

func (e *expander) ints(name string, v ...int64) string { return e.b.Ints(e.tag+"/"+name, v...) }

// like casts a float constant to v's type.
func (e *expander) like(name string, val float64, v string) string {
	return e.op(name, "CastLike", e.b.Scalar(e.tag+"/"+name+"/value", ir.Float32, val), v)
}

// output renames the value that computes output i to the node's own name.
func (e *expander) output(i int, v string) {
	if i < len(e.n.Outputs) && e.n.Outputs[i] != "" {
		e.b.Add(&ir.Node{Name: e.tag + fmt.Sprintf("/out%d", i), OpType: "Identity", Inputs: []string{v}, Outputs: []string{e.n.Outputs[i]}})
	}
}

func (e *expander) errorf(f string, a ...any) error {
	return fmt.Errorf("passes: expand %s: %s", e.n, fmt.Sprintf(f, a...))
}

// rank returns the inferred rank of v, or 0.
func (e *expander) rank(v string) int { return len(e.si.dims[v]) }

// rmsNorm: Y = X / sqrt(mean(X², axes from axis to the last) + ε) · scale,
// the statistics in stash_type.
func (e *expander) rmsNorm() error {
	x, scale := e.n.Input(0), e.n.Input(1)
	axis := e.n.AttrInt("axis", -1)
	if axis >= 0 {
		r := e.rank(x)
		if r == 0 {
			return e.errorf("axis %d with an unknown input rank", axis)
		}
		axis -= int64(r)
	}
	var axes []int64
	for a := axis; a < 0; a++ {
		axes = append(axes, a)
	}
	stash := ir.DType(e.n.AttrInt("stash_type", int64(ir.Float32)))
	xu := e.opA("Cast", "Cast", []string{x}, ir.AttrInt("to", int64(stash)))
	mean := e.opA("ReduceMean", "ReduceMean", []string{e.op("Square", "Mul", xu, xu), e.ints("axes", axes...)}, ir.AttrInt("keepdims", 1))
	eps := e.opA("epsilon", "Cast", []string{e.b.Scalar(e.tag+"/epsilon/value", ir.Float64, float64(e.n.AttrFloat("epsilon", 1e-5)))}, ir.AttrInt("to", int64(stash)))
	rms := e.op("Sqrt", "Sqrt", e.op("AddEpsilon", "Add", mean, eps))
	normalized := e.op("CastBack", "CastLike", e.op("Div", "Div", xu, rms), x)
	e.output(0, e.op("Scale", "Mul", normalized, scale))
	return nil
}

// rotary: the non-interleaved rotation of the first 2·|cos| channels of
// each head, x·cos + rotate_half(x)·sin, the rest passed through.
func (e *expander) rotary() error {
	if e.n.AttrInt("interleaved", 0) != 0 {
		return e.errorf("interleaved rotation is not supported in training graphs")
	}
	x, cosC, sinC, pos := e.n.Input(0), e.n.Input(1), e.n.Input(2), e.n.Input(3)
	heads := e.n.AttrInt("num_heads", 0)
	rank := e.rank(x)
	if rank == 0 {
		rank = 4
		if heads > 0 {
			rank = 3
		}
	}
	cos, sin := cosC, sinC
	if pos != "" {
		cos = e.op("cos/Gather", "Gather", cosC, pos)
		sin = e.op("sin/Gather", "Gather", sinC, pos)
	}
	// Work in [batch, seq, heads, head_size]; cos is [batch, seq, half].
	var x4 string
	switch rank {
	case 3:
		if heads <= 0 {
			return e.errorf("a 3-D input needs num_heads")
		}
		x4 = e.op("Reshape", "Reshape", x, e.ints("heads_shape", 0, 0, heads, -1))
	case 4:
		x4 = e.opA("Transpose", "Transpose", []string{x}, ir.AttrInts("perm", 0, 2, 1, 3))
	default:
		return e.errorf("input of rank %d", rank)
	}
	cos = e.op("cos/Unsqueeze", "Unsqueeze", cos, e.ints("head_axis", 2))
	sin = e.op("sin/Unsqueeze", "Unsqueeze", sin, e.ints("head_axis2", 2))
	half := e.opA("half", "Slice", []string{e.op("cos/Shape", "Shape", cos), e.ints("last", -1), e.ints("end", math.MaxInt64)})
	full := e.op("full", "Add", half, half)
	last := e.ints("axis", -1)
	x1 := e.op("x1", "Slice", x4, e.ints("zero", 0), half, last)
	x2 := e.op("x2", "Slice", x4, half, full, last)
	rest := e.op("rest", "Slice", x4, full, e.ints("max", math.MaxInt64), last)
	real := e.op("real", "Sub", e.op("x1cos", "Mul", x1, cos), e.op("x2sin", "Mul", x2, sin))
	imag := e.op("imag", "Add", e.op("x1sin", "Mul", x1, sin), e.op("x2cos", "Mul", x2, cos))
	y4 := e.opA("Concat", "Concat", []string{real, imag, rest}, ir.AttrInt("axis", -1))
	if rank == 3 {
		e.output(0, e.op("ReshapeBack", "Reshape", y4, e.op("Shape", "Shape", x)))
	} else {
		e.output(0, e.opA("TransposeBack", "Transpose", []string{y4}, ir.AttrInts("perm", 0, 2, 1, 3)))
	}
	return nil
}

// attention: softmax(Q·Kᵀ·scale + mask)·V with grouped K/V heads, a
// boolean or additive mask, causal masking and nonpad_kv_seqlen.
func (e *expander) attention() error {
	q, k, v, mask := e.n.Input(0), e.n.Input(1), e.n.Input(2), e.n.Input(3)
	if e.n.Input(4) != "" || e.n.Input(5) != "" {
		return e.errorf("a past key/value cache cannot be used in a whole-sequence graph")
	}
	if len(e.n.Outputs) > 3 && e.n.Outputs[3] != "" {
		return e.errorf("the qk_matmul_output output is not supported")
	}
	if e.n.AttrFloat("softcap", 0) != 0 {
		return e.errorf("softcap is not supported in training graphs")
	}
	qh, kvh := e.n.AttrInt("q_num_heads", 0), e.n.AttrInt("kv_num_heads", 0)
	rank := e.rank(q)
	if rank == 0 {
		rank = 4
		if qh > 0 {
			rank = 3
		}
	}
	to4 := func(name, x string, heads int64) string {
		r := e.op(name+"/Reshape", "Reshape", x, e.ints(name+"/shape", 0, 0, heads, -1))
		return e.opA(name+"/Transpose", "Transpose", []string{r}, ir.AttrInts("perm", 0, 2, 1, 3))
	}
	q4, k4, v4 := q, k, v
	if rank == 3 {
		if qh <= 0 || kvh <= 0 {
			return e.errorf("3-D inputs need q_num_heads and kv_num_heads")
		}
		q4, k4, v4 = to4("q", q, qh), to4("k", k, kvh), to4("v", v, kvh)
	} else if qh == 0 || kvh == 0 {
		dq, dk := e.si.dims[q], e.si.dims[k]
		var ok1, ok2 bool
		if len(dq) == 4 && len(dk) == 4 {
			qh, ok1 = isNum(dq[1])
			kvh, ok2 = isNum(dk[1])
		}
		if !ok1 || !ok2 {
			return e.errorf("unknown head counts: give q_num_heads and kv_num_heads")
		}
	}
	e.output(1, k4)
	e.output(2, v4)
	if qh != kvh {
		if kvh <= 0 || qh%kvh != 0 {
			return e.errorf("%d query heads are not a multiple of %d key/value heads", qh, kvh)
		}
		repeat := func(name, x string) string {
			u := e.op(name+"/Unsqueeze", "Unsqueeze", x, e.ints(name+"/axis", 2))
			shape := e.op(name+"/shape", "Shape", u)
			target := e.opA(name+"/target", "ScatterElements", []string{shape, e.ints(name+"/at", 2), e.ints(name+"/rep", qh/kvh)}, ir.AttrInt("axis", 0))
			x5 := e.op(name+"/Expand", "Expand", u, target)
			// [b, kv, rep, t, d] → [b, q_heads, t, d]
			xs := e.op(name+"/x/shape", "Shape", x)
			merged := e.opA(name+"/merged", "Concat", []string{
				e.op(name+"/b", "Slice", xs, e.ints(name+"/b0", 0), e.ints(name+"/b1", 1)),
				e.ints(name+"/heads", qh, -1),
				e.op(name+"/d", "Slice", xs, e.ints(name+"/d0", 3), e.ints(name+"/d1", 4)),
			}, ir.AttrInt("axis", 0))
			return e.op(name+"/Reshape", "Reshape", x5, merged)
		}
		k4, v4 = repeat("k/repeat", k4), repeat("v/repeat", v4)
	}
	var scale string
	if a := e.n.Attr("scale"); a != nil {
		scale = e.like("scale", float64(a.GetF()), q4)
	} else {
		d := e.op("head_size", "CastLike", e.opA("head_size/Slice", "Slice", []string{e.op("q/Shape", "Shape", q4), e.ints("last", -1), e.ints("end", math.MaxInt64)}), q4)
		scale = e.op("scale", "Reciprocal", e.op("scale/Sqrt", "Sqrt", d))
	}
	kt := e.opA("kT", "Transpose", []string{k4}, ir.AttrInts("perm", 0, 1, 3, 2))
	scores := e.op("scores", "Mul", e.op("QK", "MatMul", q4, kt), scale)
	neg := e.like("masked", -1e30, scores) // finite: a fully masked row gives a uniform row, not NaN
	if mask != "" {
		m := mask
		if e.maskIsBool(mask) {
			m = e.op("mask/Where", "Where", mask, e.like("mask/zero", 0, scores), neg)
		}
		scores = e.op("mask/Add", "Add", scores, m)
	}
	keyIndex := func(name string) string { // [t]: 0..t−1
		t := e.opA(name+"/t", "Squeeze", []string{e.opA(name+"/t/Slice", "Slice", []string{e.op(name+"/shape", "Shape", scores), e.ints(name+"/last", -1), e.ints(name+"/end", math.MaxInt64)})})
		return e.op(name+"/Range", "Range", e.b.Scalar(e.tag+"/"+name+"/start", ir.Int64, 0), t, e.b.Scalar(e.tag+"/"+name+"/step", ir.Int64, 1))
	}
	if e.n.AttrInt("is_causal", 0) != 0 {
		// Query i (of s) sees keys j ≤ i + (t − s).
		shape := e.op("causal/shape", "Shape", scores)
		s := e.opA("causal/s", "Squeeze", []string{e.opA("causal/s/Slice", "Slice", []string{shape, e.ints("causal/s/start", -2), e.ints("causal/s/end", -1)})})
		t := e.opA("causal/t", "Squeeze", []string{e.opA("causal/t/Slice", "Slice", []string{shape, e.ints("causal/t/start", -1), e.ints("causal/t/end", math.MaxInt64)})})
		rows := e.op("causal/rows", "Range", e.b.Scalar(e.tag+"/causal/r0", ir.Int64, 0), s, e.b.Scalar(e.tag+"/causal/r1", ir.Int64, 1))
		limit := e.op("causal/limit", "Add", e.op("causal/rows2", "Unsqueeze", rows, e.ints("causal/col", 1)), e.op("causal/offset", "Sub", t, s))
		allowed := e.op("causal/allowed", "LessOrEqual", keyIndex("causal/keys"), limit)
		scores = e.op("causal/Where", "Where", allowed, scores, neg)
	}
	if nonpad := e.n.Input(6); nonpad != "" {
		lens := e.op("nonpad/Unsqueeze", "Unsqueeze", nonpad, e.ints("nonpad/axes", 1, 2, 3))
		scores = e.op("nonpad/Where", "Where", e.op("nonpad/Less", "Less", keyIndex("nonpad/keys"), lens), scores, neg)
	}
	probs := e.opA("Softmax", "Softmax", []string{scores}, ir.AttrInt("axis", -1))
	y4 := e.op("PV", "MatMul", probs, v4)
	if rank == 3 {
		yt := e.opA("y/Transpose", "Transpose", []string{y4}, ir.AttrInts("perm", 0, 2, 1, 3))
		e.output(0, e.op("y/Reshape", "Reshape", yt, e.ints("y/shape", 0, 0, -1)))
	} else {
		e.output(0, y4)
	}
	return nil
}

// maskIsBool reports whether the mask is boolean (from its declared type,
// or from the comparison or logical op that makes it).
func (e *expander) maskIsBool(mask string) bool {
	if in := e.s.Model.Graph.Input(mask); in != nil && in.Type != nil {
		return in.Type.DType == ir.Bool
	}
	if t := e.s.Model.Graph.Initializer(mask); t != nil {
		return t.DType == ir.Bool
	}
	for _, n := range e.b.G.Nodes {
		for _, o := range n.Outputs {
			if o != mask {
				continue
			}
			switch n.OpType {
			case "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Not", "Xor":
				return true
			case "Cast":
				return ir.DType(n.AttrInt("to", 0)) == ir.Bool
			case "Unsqueeze", "Reshape", "Expand", "Identity", "Squeeze":
				return e.maskIsBool(n.Input(0))
			}
			return false
		}
	}
	return false
}
