package passes

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/ir/onnxpb"
)

// Symbolic shapes: just enough inference for the autodiff to prove that a
// gradient already has its input's shape, so that undoing a broadcast can be
// skipped. A dim is a token: a number ("64", "1"), a graph input's dim name
// ("batch_size"), or a fresh "?N" for a size nothing else is known to equal.
// Equal tokens mean equal sizes at run time; different tokens prove nothing.
// A value with no inferred shape is simply not optimized.
type shapeInfo struct {
	dims   map[string][]string // value → its shape
	vals   map[string][]string // small int64 tensors → their contents (shape arithmetic)
	splits map[string]splitOf  // the sizes a Split cut a dim into, "+"-joined
	fresh  int
}

// splitOf is a dim that a Split cut by a computed size vector: the parts'
// sizes add up to dim, and sizes is the vector (a graph value).
type splitOf struct{ dim, sizes string }

func (si *shapeInfo) unknown() string {
	si.fresh++
	return "?" + strconv.Itoa(si.fresh)
}

// unknownValue returns a fresh token for the result of integer arithmetic
// on shape values: unlike a dim, it may be negative ("?v" marks it).
func (si *shapeInfo) unknownValue() string {
	si.fresh++
	return "?v" + strconv.Itoa(si.fresh)
}

// nonNegative reports whether a value token is known to be ≥ 0: a number
// ≥ 0, or a product with a non-negative coefficient of dims (sizes), none
// of them a computed value.
func nonNegative(tok string) bool {
	n, syms := factors(tok)
	for _, f := range syms {
		if strings.HasPrefix(f, "?v") || strings.HasPrefix(f, "-") {
			return false
		}
	}
	return n >= 0
}

// castVals carries tracked integer entries through a Cast: to an integer
// type unchanged, to bool as x ≠ 0 (decided for numbers and for sizes
// known positive only); to a float type not at all, since the arithmetic
// on tracked entries is integer arithmetic.
func castVals(v []string, to ir.DType) ([]string, bool) {
	switch to {
	case ir.Int64, ir.Int32:
		return v, true
	case ir.Bool:
		out := make([]string, len(v))
		for i, t := range v {
			x, ok := isNum(t)
			if !ok {
				return nil, false // a size may be 0
			}
			out[i] = map[bool]string{true: "1", false: "0"}[x != 0]
		}
		return out, true
	}
	return nil, false
}

// unknownSize reports whether a dim token involves a "?N" size, one the
// inference knows only as equal to other "?N" sizes (it may be 0).
func unknownSize(tok string) bool { return strings.Contains(tok, "?") }

// reversesAxis reports whether a Slice's start, end and step on one axis
// reverse the whole axis, whatever its size: step −1 from the last element
// (start −1) to past the first (end at or below −2⁶²).
func reversesAxis(start, end, step int64) bool { return step == -1 && start == -1 && end <= -(1<<62) }

func num(n int64) string { return strconv.FormatInt(n, 10) }

func isNum(t string) (int64, bool) {
	n, err := strconv.ParseInt(t, 10, 64)
	return n, err == nil
}

// sameShape reports whether a and b are provably the same shape.
func (si *shapeInfo) sameShape(a, b string) bool {
	da, okA := si.dims[a]
	db, okB := si.dims[b]
	if !okA || !okB || len(da) != len(db) {
		return false
	}
	for i := range da {
		if da[i] != db[i] {
			return false
		}
	}
	return true
}

func inferShapes(g *ir.Graph) *shapeInfo {
	si := &shapeInfo{dims: map[string][]string{}, vals: map[string][]string{}, splits: map[string]splitOf{}}
	for _, in := range g.Inputs {
		if in.Type == nil || !in.Type.Shape {
			continue
		}
		d := make([]string, len(in.Type.Dims))
		for i, x := range in.Type.Dims {
			switch {
			case x.Param != "":
				d[i] = x.Param
			case x.Value >= 0:
				d[i] = num(x.Value)
			default:
				d[i] = si.unknown()
			}
		}
		si.dims[in.Name] = d
	}
	for _, t := range g.Initializers {
		si.setConst(t)
	}
	for _, n := range g.Nodes {
		si.node(n)
	}
	return si
}

func (si *shapeInfo) setConst(t *ir.Tensor) {
	d := make([]string, len(t.Dims))
	for i, x := range t.Dims {
		d[i] = num(x)
	}
	si.dims[t.Name] = d
	if t.DType == ir.Bool && t.External == nil && t.NumElements() <= 16 && len(t.Dims) <= 1 && len(t.Raw) == int(t.NumElements()) {
		s := make([]string, len(t.Raw))
		for i, x := range t.Raw {
			s[i] = num(int64(min(x, 1)))
		}
		si.vals[t.Name] = s
	}
	if (t.DType == ir.Int64 || t.DType == ir.Int32) && t.External == nil && t.NumElements() <= 16 && len(t.Dims) <= 1 {
		if v, err := t.Int64s(); err == nil {
			s := make([]string, len(v))
			for i, x := range v {
				s[i] = num(x)
			}
			si.vals[t.Name] = s
		}
	}
}

// constInts reads a tracked int tensor whose entries are all numbers.
func (si *shapeInfo) constInts(v string) ([]int64, bool) {
	toks, ok := si.vals[v]
	if !ok {
		return nil, false
	}
	out := make([]int64, len(toks))
	for i, t := range toks {
		n, ok := isNum(t)
		if !ok {
			return nil, false
		}
		out[i] = n
	}
	return out, true
}

func normAxis(a int64, rank int) (int, bool) {
	if a < 0 {
		a += int64(rank)
	}
	if a < 0 || a >= int64(rank) {
		return 0, false
	}
	return int(a), true
}

func (si *shapeInfo) broadcast(shapes ...[]string) []string {
	rank := 0
	for _, s := range shapes {
		rank = max(rank, len(s))
	}
	out := make([]string, rank)
	for i := 0; i < rank; i++ {
		tok := ""
		for _, s := range shapes {
			j := i - (rank - len(s))
			if j < 0 {
				continue
			}
			t := s[j]
			switch {
			case tok == "" || tok == "1":
				tok = t
			case t == "1" || t == tok:
			default:
				tok = si.unknown()
			}
		}
		out[i] = tok
	}
	return out
}

var sameShapeOps = map[string]bool{
	"Identity": true, "Cast": true, "CastLike": true, "Neg": true, "Sqrt": true, "Reciprocal": true,
	"Exp": true, "Log": true, "Sigmoid": true, "Tanh": true, "Cos": true, "Sin": true, "Softmax": true,
	"LogSoftmax": true, "Dropout": true, "Relu": true, "Erf": true, "Abs": true, "Not": true, "Trilu": true,
	"Floor": true, "Ceil": true, "Round": true, "IsNaN": true, "IsInf": true, "Sign": true,
}

var broadcastOps = map[string]bool{
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Pow": true, "Equal": true, "Less": true,
	"Greater": true, "LessOrEqual": true, "GreaterOrEqual": true, "And": true, "Or": true, "Xor": true,
	"Where": true, "Max": true, "Min": true, "Sum": true,
}

func (si *shapeInfo) node(n *ir.Node) {
	defer func() {
		// Shape inference is an optimization: a surprise leaves the
		// outputs unknown rather than failing the compile.
		_ = recover()
	}()
	in := func(i int) ([]string, bool) {
		d, ok := si.dims[n.Input(i)]
		return d, ok && n.Input(i) != ""
	}
	set := func(d []string) {
		if len(n.Outputs) > 0 && n.Outputs[0] != "" {
			si.dims[n.Outputs[0]] = d
		}
	}
	switch {
	case n.Domain != "":
		return
	case sameShapeOps[n.OpType]:
		if d, ok := in(0); ok {
			set(d)
			if v, ok := si.vals[n.Input(0)]; ok && n.OpType == "Identity" {
				si.vals[n.Outputs[0]] = v
			} else if ok && n.OpType == "Cast" {
				if c, ok := castVals(v, ir.DType(n.AttrInt("to", 0))); ok {
					si.vals[n.Outputs[0]] = c
				}
			}
		}
		return
	case broadcastOps[n.OpType]:
		var all [][]string
		for i := range n.Inputs {
			d, ok := in(i)
			if !ok {
				return
			}
			all = append(all, d)
		}
		set(si.broadcast(all...))
		si.arith(n)
		si.computedVals(n)
		return
	}
	switch n.OpType {
	case "Constant":
		if a := n.Attr("value"); a != nil && a.GetT() != nil {
			if t, err := ir.TensorFromPB(a.GetT(), ""); err == nil {
				t.Name = n.Outputs[0]
				si.setConst(t)
			}
		} else if a := n.Attr("value_ints"); a != nil {
			si.setConst(ir.NewTensorI64(n.Outputs[0], []int64{int64(len(a.GetInts()))}, a.GetInts()))
		} else if a := n.Attr("value_int"); a != nil {
			si.setConst(ir.NewTensorI64(n.Outputs[0], nil, []int64{a.GetI()}))
		} else if a := n.Attr("value_float"); a != nil {
			set([]string{})
		} else if a := n.Attr("value_floats"); a != nil {
			set([]string{num(int64(len(a.GetFloats())))})
		}
	case "GatherND":
		data, ok1 := in(0)
		idx, ok2 := in(1)
		if !ok1 || !ok2 || len(idx) == 0 || n.AttrInt("batch_dims", 0) != 0 {
			return
		}
		k, ok := isNum(idx[len(idx)-1])
		if !ok || int(k) > len(data) {
			return
		}
		set(append(append([]string{}, idx[:len(idx)-1]...), data[k:]...))
	case "Shape":
		d, ok := in(0)
		if !ok {
			return
		}
		start, end := int(n.AttrInt("start", 0)), int(n.AttrInt("end", int64(len(d))))
		if start < 0 {
			start += len(d)
		}
		if end < 0 {
			end += len(d)
		}
		start, end = max(0, min(start, len(d))), max(0, min(end, len(d)))
		v := append([]string(nil), d[start:max(start, end)]...)
		si.vals[n.Outputs[0]] = v
		set([]string{num(int64(len(v)))})
	case "Gather":
		data, ok1 := in(0)
		idx, ok2 := in(1)
		if !ok1 || !ok2 {
			return
		}
		axis, ok := normAxis(n.AttrInt("axis", 0), len(data))
		if !ok {
			return
		}
		out := append(append(append([]string{}, data[:axis]...), idx...), data[axis+1:]...)
		set(out)
		if vals, ok := si.vals[n.Input(0)]; ok && axis == 0 {
			if ix, ok := si.constInts(n.Input(1)); ok {
				var v []string
				for _, i := range ix {
					if i < 0 {
						i += int64(len(vals))
					}
					v = append(v, vals[i])
				}
				si.vals[n.Outputs[0]] = v
			}
		}
	case "Unsqueeze", "Squeeze":
		d, ok := in(0)
		if !ok {
			return
		}
		axes, ok := si.axes(n)
		if !ok {
			return
		}
		if n.OpType == "Unsqueeze" {
			rank := len(d) + len(axes)
			out := make([]string, rank)
			mark := map[int]bool{}
			for _, a := range axes {
				i, ok := normAxis(a, rank)
				if !ok {
					return
				}
				mark[i] = true
			}
			j := 0
			for i := range out {
				if mark[i] {
					out[i] = "1"
				} else {
					out[i] = d[j]
					j++
				}
			}
			set(out)
		} else {
			if len(axes) == 0 {
				// Squeeze every dim of size 1; only provable when all are numbers.
				for i, t := range d {
					if _, ok := isNum(t); !ok {
						return
					}
					if t == "1" {
						axes = append(axes, int64(i))
					}
				}
			}
			drop := map[int]bool{}
			for _, a := range axes {
				i, ok := normAxis(a, len(d))
				if !ok {
					return
				}
				drop[i] = true
			}
			var out []string
			for i, t := range d {
				if !drop[i] {
					out = append(out, t)
				}
			}
			set(out)
		}
		if v, ok := si.vals[n.Input(0)]; ok {
			si.vals[n.Outputs[0]] = v
		}
	case "Concat":
		axis := n.AttrInt("axis", 0)
		var parts [][]string
		for i := range n.Inputs {
			d, ok := in(i)
			if !ok {
				return
			}
			parts = append(parts, d)
		}
		a, ok := normAxis(axis, len(parts[0]))
		if !ok {
			return
		}
		out := append([]string(nil), parts[0]...)
		total := int64(0)
		numeric := true
		for _, p := range parts {
			v, ok := isNum(p[a])
			numeric = numeric && ok
			total += v
		}
		var symbolic, all []string
		for _, p := range parts {
			if _, ok := isNum(p[a]); !ok {
				symbolic = append(symbolic, p[a])
			}
			all = append(all, p[a])
		}
		whole, split := si.splits[strings.Join(all, "+")]
		switch {
		case numeric:
			out[a] = num(total)
		case len(symbolic) == 1 && total == 0:
			out[a] = symbolic[0] // empty parts (a dropped cache) add nothing
		case split:
			out[a] = whole.dim // the parts of a Split, in order
		default:
			out[a] = si.unknown()
		}
		set(out)
		var vals []string
		for _, name := range n.Inputs {
			v, ok := si.vals[name]
			if !ok {
				return
			}
			vals = append(vals, v...)
		}
		si.vals[n.Outputs[0]] = vals
	case "Reshape":
		d, ok := in(0)
		if !ok {
			return
		}
		target, ok := si.vals[n.Input(1)]
		if !ok {
			return
		}
		out := make([]string, len(target))
		infer := -1
		for i, t := range target {
			switch t {
			case "0":
				if n.AttrInt("allowzero", 0) == 0 && i < len(d) {
					out[i] = d[i]
				} else {
					out[i] = "0"
				}
			case "-1":
				infer = i
			default:
				out[i] = t
			}
		}
		if infer >= 0 {
			out[infer] = si.quotient(d, out, infer)
		}
		set(out)
		if v, ok := si.vals[n.Input(0)]; ok {
			si.vals[n.Outputs[0]] = v // a shape value keeps its entries
		}
	case "Expand":
		d, ok := in(0)
		if !ok {
			return
		}
		target, ok2 := si.vals[n.Input(1)]
		if !ok2 {
			// The target's length is known from its shape: the rank.
			ts, ok := in(1)
			if !ok || len(ts) != 1 {
				return
			}
			r, ok := isNum(ts[0])
			if !ok {
				return
			}
			target = make([]string, r)
			for i := range target {
				target[i] = si.unknown()
			}
		}
		set(si.broadcast(d, target))
	case "ConstantOfShape":
		if target, ok := si.vals[n.Input(0)]; ok {
			set(append([]string(nil), target...))
			// A short 1-D fill of an integer: its entries (shape arithmetic).
			if c, ok := si.constInts(n.Input(0)); ok && len(c) == 1 && c[0] <= 16 {
				fill := int64(0)
				if a := n.Attr("value"); a != nil && a.GetT() != nil {
					t, err := ir.TensorFromPB(a.GetT(), "")
					if err != nil {
						return
					}
					v, err := t.Int64s()
					if err != nil || len(v) != 1 {
						return
					}
					fill = v[0]
				}
				vals := make([]string, c[0])
				for i := range vals {
					vals[i] = num(fill)
				}
				si.vals[n.Outputs[0]] = vals
			}
		}
	case "Transpose":
		d, ok := in(0)
		if !ok {
			return
		}
		perm := n.AttrInts("perm")
		out := make([]string, len(d))
		for i := range out {
			if perm == nil {
				out[i] = d[len(d)-1-i]
			} else {
				out[i] = d[perm[i]]
			}
		}
		set(out)
	case "MatMul":
		a, ok1 := in(0)
		b, ok2 := in(1)
		if !ok1 || !ok2 || len(a) < 2 || len(b) < 2 {
			return
		}
		batch := si.broadcast(a[:len(a)-2], b[:len(b)-2])
		set(append(batch, a[len(a)-2], b[len(b)-1]))
	case "Gemm":
		a, ok1 := in(0)
		b, ok2 := in(1)
		if !ok1 || !ok2 || len(a) != 2 || len(b) != 2 {
			return
		}
		m, k := a[0], b[1]
		if n.AttrInt("transA", 0) == 1 {
			m = a[1]
		}
		if n.AttrInt("transB", 0) == 1 {
			k = b[0]
		}
		set([]string{m, k})
	case "ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin", "ReduceSumSquare", "ReduceProd", "ReduceL2", "ReduceLogSumExp":
		d, ok := in(0)
		if !ok {
			return
		}
		axes, ok := si.axes(n)
		if !ok {
			return
		}
		if len(axes) == 0 {
			if n.AttrInt("noop_with_empty_axes", 0) != 0 {
				return
			}
			for i := range d {
				axes = append(axes, int64(i)) // no axes: every dim
			}
		}
		red := map[int]bool{}
		for _, a := range axes {
			i, ok := normAxis(a, len(d))
			if !ok {
				return
			}
			red[i] = true
		}
		keep := n.AttrInt("keepdims", 1) == 1
		var out []string
		for i, t := range d {
			switch {
			case !red[i]:
				out = append(out, t)
			case keep:
				out = append(out, "1")
			}
		}
		set(out)
	case "Slice":
		d, ok := in(0)
		if !ok {
			return
		}
		out := append([]string(nil), d...)
		axes, ok := si.constInts(n.Input(3))
		if !ok {
			starts, _ := si.vals[n.Input(1)]
			axes = make([]int64, len(starts))
			for i := range axes {
				axes[i] = int64(i)
			}
		}
		starts, okS := si.constInts(n.Input(1))
		ends, okE := si.constInts(n.Input(2))
		steps, okSt := si.constInts(n.Input(4))
		for k, a := range axes {
			i, ok := normAxis(a, len(d))
			if !ok {
				continue
			}
			out[i] = si.unknown()
			if okS && okE && okSt && k < len(starts) && k < len(ends) && k < len(steps) && reversesAxis(starts[k], ends[k], steps[k]) {
				out[i] = d[i] // the whole axis, reversed
				continue
			}
			dim, okD := isNum(d[i])
			if okD && okS && okE && k < len(starts) && k < len(ends) && (n.Input(4) == "" || (okSt && k < len(steps) && steps[k] == 1)) {
				clamp := func(v int64) int64 {
					if v < 0 {
						v += dim
					}
					return max(0, min(v, dim))
				}
				out[i] = num(max(0, clamp(ends[k])-clamp(starts[k])))
			}
		}
		set(out)
		// Slicing a shape value (1-D, constant bounds, step 1).
		if v, ok := si.vals[n.Input(0)]; ok && okS && okE && len(starts) == 1 && (n.Input(4) == "" || (okSt && steps[0] == 1)) {
			dim := int64(len(v))
			clamp := func(x int64) int64 {
				if x < 0 {
					x += dim
				}
				return max(0, min(x, dim))
			}
			if b, e := clamp(starts[0]), clamp(ends[0]); b <= e {
				si.vals[n.Outputs[0]] = append([]string(nil), v[b:e]...)
			}
		}
	case "Range":
		start, ok1 := si.constInts(n.Input(0))
		delta, ok3 := si.constInts(n.Input(2))
		if limit, ok2 := si.constInts(n.Input(1)); ok1 && ok2 && ok3 && len(start) == 1 && len(limit) == 1 && len(delta) == 1 && delta[0] != 0 {
			count := max(0, (limit[0]-start[0]+delta[0]-1)/delta[0])
			if delta[0] < 0 {
				count = max(0, (start[0]-limit[0]-delta[0]-1)/(-delta[0]))
			}
			set([]string{num(count)})
		} else if lim, ok := si.vals[n.Input(1)]; ok && ok1 && ok3 && len(lim) == 1 && start[0] == 0 && delta[0] == 1 {
			set([]string{lim[0]})
		} else {
			set([]string{si.unknown()})
		}
	case "Flatten":
		d, ok := in(0)
		if !ok {
			return
		}
		// axis ∈ [−r, r]: a negative one counts from the back of the rank.
		axis := int(n.AttrInt("axis", 1))
		if axis < 0 {
			axis += len(d)
		}
		if axis < 0 || axis > len(d) {
			return
		}
		prod := func(ts []string) string {
			p := int64(1)
			var sym []string
			for _, t := range ts {
				if v, ok := isNum(t); ok {
					p *= v
				} else {
					sym = append(sym, t)
				}
			}
			return product(p, sym)
		}
		set([]string{prod(d[:axis]), prod(d[axis:])})
	case "GatherElements":
		if d, ok := in(1); ok {
			set(d)
		}
	case "Size":
		set([]string{})
	case "NonZero":
		if d, ok := in(0); ok {
			set([]string{num(int64(len(d))), si.unknown()})
		}
	case "ScatterND", "ScatterElements":
		if d, ok := in(0); ok {
			set(d)
		}
	case "Loop":
		si.loop(n)
	case "If":
		si.ifOp(n)
	case "Split":
		d, ok := in(0)
		if !ok {
			return
		}
		axis, ok := normAxis(n.AttrInt("axis", 0), len(d))
		if !ok {
			return
		}
		sizes := n.AttrInts("split")
		var sizeVals []string // computed sizes: the values' tokens
		if sizes == nil && n.Input(1) != "" {
			if sizes, ok = si.constInts(n.Input(1)); !ok {
				if sizeVals, ok = si.vals[n.Input(1)]; !ok || len(sizeVals) != len(n.Outputs) {
					return
				}
				si.splits[strings.Join(sizeVals, "+")] = splitOf{dim: d[axis], sizes: n.Input(1)}
			}
		}
		for i, o := range n.Outputs {
			if o == "" {
				continue
			}
			out := append([]string(nil), d...)
			switch dim, isN := isNum(d[axis]); {
			case sizeVals != nil:
				out[axis] = sizeVals[i]
			case i < len(sizes):
				out[axis] = num(sizes[i])
			case sizes == nil && isN && dim%int64(len(n.Outputs)) == 0:
				out[axis] = num(dim / int64(len(n.Outputs)))
			default:
				out[axis] = si.unknown()
			}
			si.dims[o] = out
		}
	case "Pad":
		d, ok := in(0)
		if !ok || n.Input(3) != "" {
			return
		}
		pads, ok := si.vals[n.Input(1)] // numbers, or sizes computed in the graph
		if c, isConst := si.constInts(n.Input(1)); isConst {
			pads = make([]string, len(c))
			for i, x := range c {
				pads[i] = num(x)
			}
			ok = true
		}
		if !ok || len(pads) != 2*len(d) {
			return
		}
		out := make([]string, len(d))
		for i, t := range d {
			before, after := pads[i], pads[i+len(d)]
			b, okB := isNum(before)
			a, okA := isNum(after)
			v, isN := isNum(t)
			whole, split := si.splits[t+"+"+after] // a prefix padded back to its Split's input
			switch {
			case okA && okB && a+b == 0:
				out[i] = t
			case okA && okB && isN:
				out[i] = num(v + a + b)
			case okB && b == 0 && split:
				out[i] = whole.dim
			default:
				out[i] = si.unknown()
			}
		}
		set(out)
	}
}

// loop infers the shapes inside a Loop body (its nodes read outer values by
// name) and the Loop's outputs: a carried value keeps its shape when the
// body returns it unchanged in shape; a scan output stacks the body's per-
// iteration value along a new first dim, the trip count when the loop
// runs exactly that often (no initial condition, and the body passes its
// condition through unchanged).
func (si *shapeInfo) loop(n *ir.Node) {
	a := n.Attr("body")
	if a == nil || a.GetG() == nil {
		return
	}
	body := a.GetG()
	if len(body.Input) < 2 || len(body.Output) < 1 || len(n.Inputs) < 2 {
		return
	}
	carried := len(n.Inputs) - 2
	if len(body.Input) != 2+carried || len(body.Output) < 1+carried {
		return
	}
	si.dims[body.Input[0].GetName()] = []string{}
	si.dims[body.Input[1].GetName()] = []string{}
	for k := 0; k < carried; k++ {
		if d, ok := si.dims[n.Input(2+k)]; ok && n.Input(2+k) != "" {
			si.dims[body.Input[2+k].GetName()] = d
		}
	}
	si.subgraph(body)
	condIn, condOut := body.Input[1].GetName(), body.Output[0].GetName()
	passes := condOut == condIn
	for _, bn := range body.Node {
		if bn.GetOpType() == "Identity" && len(bn.Input) == 1 && bn.Input[0] == condIn && len(bn.Output) == 1 && bn.Output[0] == condOut {
			passes = true
		}
	}
	for k := 0; k < carried && k < len(n.Outputs); k++ {
		bo := body.Output[1+k].GetName()
		if si.sameShape(bo, body.Input[2+k].GetName()) && n.Outputs[k] != "" {
			si.dims[n.Outputs[k]] = si.dims[bo]
		}
	}
	trips := si.unknown()
	if v, ok := si.vals[n.Input(0)]; ok && len(v) == 1 && passes && n.Input(0) != "" && n.Input(1) == "" {
		trips = v[0]
	}
	for j := 1 + carried; j < len(body.Output) && j-1 < len(n.Outputs); j++ {
		d, ok := si.dims[body.Output[j].GetName()]
		if !ok || n.Outputs[j-1] == "" {
			continue
		}
		si.dims[n.Outputs[j-1]] = append([]string{trips}, d...)
	}
}

// subgraph infers the shapes of a sub-graph's initializers and nodes (its
// inputs are the caller's to set).
func (si *shapeInfo) subgraph(sg *onnxpb.GraphProto) {
	for _, t := range sg.Initializer {
		if tt, err := ir.TensorFromPB(t, ""); err == nil {
			si.setConst(tt)
		}
	}
	for _, bn := range sg.Node {
		si.node(&ir.Node{Name: bn.GetName(), OpType: bn.GetOpType(), Domain: bn.GetDomain(),
			Inputs: bn.Input, Outputs: bn.Output, Attrs: bn.Attribute})
	}
}

// ifOp infers the shapes inside both branches of an If and gives each
// output the shape its two branch outputs share.
func (si *shapeInfo) ifOp(n *ir.Node) {
	then, els := n.Attr("then_branch"), n.Attr("else_branch")
	if then == nil || then.GetG() == nil || els == nil || els.GetG() == nil {
		return
	}
	si.subgraph(then.GetG())
	si.subgraph(els.GetG())
	to, eo := then.GetG().GetOutput(), els.GetG().GetOutput()
	for k, o := range n.Outputs {
		if o == "" || k >= len(to) || k >= len(eo) {
			continue
		}
		dt, okT := si.dims[to[k].GetName()]
		de, okE := si.dims[eo[k].GetName()]
		if !okT || !okE || len(dt) != len(de) {
			continue
		}
		d := make([]string, len(dt)) // a dim the branches disagree on is unknown
		for i := range dt {
			if d[i] = dt[i]; dt[i] != de[i] {
				d[i] = si.unknown()
			}
		}
		si.dims[o] = d
	}
}

// axes returns a node's axes, from the attribute (older opsets) or the
// constant second input; ok is false when they are computed.
func (si *shapeInfo) axes(n *ir.Node) (axes []int64, ok bool) {
	if a := n.Attr("axes"); a != nil {
		return a.GetInts(), true
	}
	if n.Input(1) == "" {
		return nil, true
	}
	return si.constInts(n.Input(1))
}

// arith tracks simple integer arithmetic on shape values.
func (si *shapeInfo) arith(n *ir.Node) {
	if n.OpType != "Add" && n.OpType != "Sub" && n.OpType != "Mul" && n.OpType != "Div" && n.OpType != "Equal" && n.OpType != "Where" {
		return
	}
	if n.OpType == "Equal" || n.OpType == "Where" {
		si.selectVals(n)
		return
	}
	a, okA := si.constInts(n.Input(0))
	b, okB := si.constInts(n.Input(1))
	if okA && okB && len(a) != len(b) && (len(a) == 1 || len(b) == 1) {
		for len(a) < len(b) {
			a = append(a, a[0])
		}
		for len(b) < len(a) {
			b = append(b, b[0])
		}
	}
	if !okA || !okB || len(a) != len(b) {
		// x + 0, x − 0, x · 1, x / 1 keep x's tokens.
		x, okX := si.vals[n.Input(0)]
		y, okY := si.constInts(n.Input(1))
		if n.OpType == "Add" || n.OpType == "Mul" {
			if yv, ok := si.vals[n.Input(1)]; ok && !okY {
				if xc, ok := si.constInts(n.Input(0)); ok {
					x, okX, y, okY = yv, true, xc, true
				}
			}
		}
		if xv, ok1 := si.vals[n.Input(0)]; ok1 && n.OpType == "Sub" {
			if yv, ok2 := si.vals[n.Input(1)]; ok2 && len(xv) == len(yv) {
				zero := make([]string, len(xv))
				for i := range xv {
					if xv[i] != yv[i] {
						return
					}
					zero[i] = "0"
				}
				si.vals[n.Outputs[0]] = zero // x − x
				return
			}
		}
		if !okX || !okY || len(y) != 1 {
			return
		}
		neutral := map[string]int64{"Add": 0, "Sub": 0, "Mul": 1, "Div": 1}[n.OpType]
		switch {
		case y[0] == neutral:
			si.vals[n.Outputs[0]] = x
		case n.OpType == "Mul": // c·x is the product token "c*x"
			out := make([]string, len(x))
			for i, t := range x {
				out[i] = product(y[0], []string{t})
			}
			si.vals[n.Outputs[0]] = out
		}
		return
	}
	out := make([]string, len(a))
	for i := range a {
		var r int64
		switch n.OpType {
		case "Add":
			r = a[i] + b[i]
		case "Sub":
			r = a[i] - b[i]
		case "Mul":
			r = a[i] * b[i]
		case "Div":
			if b[i] == 0 {
				return
			}
			r = a[i] / b[i]
		}
		out[i] = num(r)
	}
	si.vals[n.Outputs[0]] = out
}

// computedVals gives the entries of integer arithmetic on shape values
// that arith could not work out a fresh token each: a size nothing else is
// known to equal, but the same wherever this value is used (for example
// block lengths computed from the sequence length, cut by one Split).
func (si *shapeInfo) computedVals(n *ir.Node) {
	switch n.OpType {
	case "Add", "Sub", "Mul", "Div", "Min", "Max":
	default:
		return
	}
	if _, done := si.vals[n.Outputs[0]]; done {
		return
	}
	width := 0
	for _, in := range n.Inputs {
		v, ok := si.vals[in]
		if !ok {
			c, isConst := si.constInts(in)
			if !isConst {
				return
			}
			v = make([]string, len(c))
		}
		if len(v) != 1 && width > 1 && len(v) != width {
			return
		}
		width = max(width, len(v))
	}
	out := make([]string, width)
	for i := range out {
		out[i] = si.unknownValue()
	}
	si.vals[n.Outputs[0]] = out
}

// selectVals tracks Equal and Where on shape values, the exporters' way of
// replacing −1 entries in an Expand target: Equal is decided where both
// entries are numbers, or one is known non-negative (a size, not a
// computed value: nonNegative) and the other a negative number; Where needs every condition decided. Booleans
// are the tokens "1" and "0"; a one-entry operand broadcasts.
func (si *shapeInfo) selectVals(n *ir.Node) {
	var ops [][]string
	width := 1
	for _, in := range n.Inputs {
		v, ok := si.vals[in]
		if !ok || len(v) == 0 {
			return
		}
		ops = append(ops, v)
		width = max(width, len(v))
	}
	at := func(v []string, i int) (string, bool) {
		switch len(v) {
		case 1:
			return v[0], true
		case width:
			return v[i], true
		}
		return "", false
	}
	out := make([]string, width)
	for i := range out {
		var e []string
		for _, v := range ops {
			x, ok := at(v, i)
			if !ok {
				return
			}
			e = append(e, x)
		}
		if n.OpType == "Where" {
			switch e[0] {
			case "1":
				out[i] = e[1]
			case "0":
				out[i] = e[2]
			default:
				return
			}
			continue
		}
		a, okA := isNum(e[0])
		b, okB := isNum(e[1])
		switch {
		case okA && okB:
			out[i] = map[bool]string{true: "1", false: "0"}[a == b]
		case e[0] == e[1]:
			out[i] = "1"
		case (okA && a < 0 && !okB && nonNegative(e[1])) || (okB && b < 0 && !okA && nonNegative(e[0])):
			out[i] = "0"
		default:
			return
		}
	}
	si.vals[n.Outputs[0]] = out
}

// quotient infers a Reshape's −1 dim: the input's dims as a multiset of
// factors (numbers and symbols), divided by the target's other dims, leave
// a number, a symbol or a product of them.
func (si *shapeInfo) quotient(in, out []string, skip int) string {
	left := map[string]int{}
	rest := int64(1)
	for _, t := range in {
		n, syms := factors(t)
		rest *= n
		for _, f := range syms {
			left[f]++
		}
	}
	prod := int64(1)
	for i, t := range out {
		if i == skip {
			continue
		}
		n, syms := factors(t)
		if n == 0 {
			return si.unknown()
		}
		for _, f := range syms {
			if left[f] == 0 {
				return si.unknown()
			}
			left[f]--
		}
		prod *= n // divides the remainder
	}
	if rest%prod != 0 {
		return si.unknown()
	}
	var sym []string
	for t, c := range left {
		for ; c > 0; c-- {
			sym = append(sym, t)
		}
	}
	return product(rest/prod, sym)
}

// factors splits a token into its numeric factor and its symbolic factors.
func factors(t string) (int64, []string) {
	n := int64(1)
	var syms []string
	for _, f := range strings.Split(t, "*") {
		if v, ok := isNum(f); ok {
			n *= v
		} else {
			syms = append(syms, f)
		}
	}
	return n, syms
}

// product is the token of q times the symbolic sizes sym: a number, a
// symbol, or the canonical product "2*batch_size*sequence_length" (sorted
// factors), so that equal products of equal sizes get equal tokens.
func product(q int64, sym []string) string {
	if len(sym) == 0 {
		return num(q)
	}
	if q == 0 {
		return "0"
	}
	var parts []string
	for _, t := range sym {
		n, syms := factors(t)
		q *= n
		parts = append(parts, syms...)
	}
	if q == 0 {
		return "0"
	}
	if len(parts) == 0 {
		return num(q)
	}
	sort.Strings(parts)
	if q != 1 {
		parts = append([]string{num(q)}, parts...)
	}
	return strings.Join(parts, "*")
}

func (si *shapeInfo) String() string { return fmt.Sprintf("%d shapes", len(si.dims)) }
