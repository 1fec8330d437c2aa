package passes

// The gradient rules, one per op type, grouped by kind as JAX groups its
// rules: zero (no gradient flows: shape, comparison and index ops), linear
// (the gradient is the adjoint of a linear map), bilinear (products) and
// general (element-wise non-linear maps and normalizations).
//
// A rule receives a gradCtx with the vocabulary of ORT's gradient builders:
//
//	I(i)    forward input i         O(i)   forward output i
//	GO(i)   gradient of output i ("" when no gradient reaches it)
//	Need(i) whether input i needs a gradient (active and differentiable)
//
// and returns one gradient name per forward input, "" for inputs that need
// none. Every rule emits standard ONNX ops only (stock ONNX Runtime builds
// ship no gradient kernels), and undoes broadcasting with ReduceSum +
// Reshape. Every rule has a central-difference test in gradrules_test.go.

import (
	"fmt"
	"strings"

	"github.com/dartc/dartc/ir"
)

type ruleKind int

const (
	kindZero ruleKind = iota
	kindLinear
	kindBilinear
	kindGeneral
)

func (k ruleKind) String() string {
	return [...]string{"zero", "linear", "bilinear", "general"}[k]
}

type rule struct {
	kind ruleKind
	// diff lists the inputs that carry gradient; nil means all.
	diff []int
	fn   func(*gradCtx) ([]string, error)
}

func (r rule) differentiable(i int) bool {
	if r.kind == kindZero {
		return false
	}
	if r.diff == nil {
		return true
	}
	for _, d := range r.diff {
		if d == i {
			return true
		}
	}
	return false
}

// rules is the registry, keyed by op type ("domain:op" outside the default
// domain).
var rules = map[string]rule{}

func register(kind ruleKind, diff []int, fn func(*gradCtx) ([]string, error), ops ...string) {
	for _, op := range ops {
		if _, dup := rules[op]; dup {
			panic("passes: gradient rule registered twice: " + op)
		}
		rules[op] = rule{kind: kind, diff: diff, fn: fn}
	}
}

// RuleOps lists the op types with a gradient rule, by kind.
func RuleOps() map[string]string {
	out := map[string]string{}
	for op, r := range rules {
		out[op] = r.kind.String()
	}
	return out
}

func init() {
	// Zero: outputs are integers, booleans or shapes, or piecewise constant.
	register(kindZero, nil, nil,
		"Shape", "Size", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Xor",
		"NonZero", "ArgMax", "ArgMin", "Range", "ConstantOfShape", "Constant", "Floor", "Ceil", "Round", "Sign",
		"IsNaN", "IsInf", "OneHot", "EyeLike")

	// Linear.
	register(kindLinear, nil, gradIdentity, "Identity")
	register(kindLinear, []int{0}, gradDropout, "Dropout")
	register(kindLinear, []int{0}, gradCast, "Cast", "CastLike")
	register(kindLinear, nil, gradNeg, "Neg")
	register(kindLinear, nil, gradAddSub, "Add", "Sub")
	register(kindLinear, nil, gradSum, "Sum")
	register(kindLinear, nil, gradTranspose, "Transpose")
	register(kindLinear, []int{0}, gradReshapeLike, "Reshape", "Squeeze", "Unsqueeze", "Flatten")
	register(kindLinear, []int{0}, gradExpand, "Expand")
	register(kindLinear, nil, gradConcat, "Concat")
	register(kindLinear, []int{0}, gradSplit, "Split")
	register(kindLinear, []int{0}, gradSlice, "Slice")
	register(kindLinear, []int{0}, gradReduce, "ReduceSum", "ReduceMean")
	register(kindLinear, []int{1, 2}, gradWhere, "Where")
	register(kindLinear, []int{0}, gradTrilu, "Trilu")

	// Bilinear.
	register(kindBilinear, nil, gradMul, "Mul")
	register(kindBilinear, nil, gradMatMul, "MatMul")
	register(kindBilinear, []int{0, 1, 2}, gradGemm, "Gemm")

	// General.
	register(kindGeneral, nil, gradDiv, "Div")
	register(kindGeneral, []int{0}, gradPow, "Pow")
	register(kindGeneral, nil, gradUnary, "Sqrt", "Reciprocal", "Exp", "Log", "Sigmoid", "Tanh", "Cos", "Sin")
	register(kindGeneral, nil, gradSoftmax, "Softmax", "LogSoftmax")
}

// grads makes the result slice for c's node.
func (c *gradCtx) grads() []string { return make([]string, c.NumInputs()) }

// like casts a float constant to the type of v.
func (c *gradCtx) like(name string, val float64, v string) string {
	return c.op(name, "CastLike", []string{c.b.Scalar(c.tag+"/"+name+"/value", ir.Float32, val), v})
}

// zerosLike is a zero tensor with v's shape and type.
func (c *gradCtx) zerosLike(name, v string) string {
	z := c.op(name+"/ConstantOfShape", "ConstantOfShape", []string{c.op(name+"/Shape", "Shape", []string{v})})
	return c.op(name, "CastLike", []string{z, v})
}

// scalarConst reports whether v is a rank-0 (or one-element rank-1)
// constant: broadcasting against it never changes the other operand's shape.
func (c *gradCtx) scalarConst(v string) bool {
	if t := c.s.Model.Graph.Initializer(v); t != nil {
		return len(t.Dims) == 0 || (len(t.Dims) == 1 && t.Dims[0] == 1)
	}
	for _, n := range c.b.G.Nodes {
		if n.OpType == "Constant" && len(n.Outputs) == 1 && n.Outputs[0] == v {
			if a := n.Attr("value"); a != nil && a.GetT() != nil {
				d := a.GetT().Dims
				return len(d) == 0 || (len(d) == 1 && d[0] == 1)
			}
		}
	}
	return false
}

// unbroadcast sums g over the axes along which x was broadcast and gives it
// x's shape. like is a forward value with g's shape ("" if none), other the
// operand x was broadcast against ("" if none): when x provably has like's
// shape, or other is a scalar constant, g already has x's shape.
func (c *gradCtx) unbroadcast(name, g, like, x, other string) string {
	if (other != "" && c.scalarConst(other)) || (like != "" && c.s.shapes != nil && c.s.shapes.sameShape(x, like)) {
		return g
	}
	if like != "" && c.s.shapes != nil {
		if gd, ok := c.s.shapes.dims[like]; ok {
			if r, ok := c.unbroadcastStatic(name, g, gd, x); ok {
				return r
			}
		}
	}
	return c.unbroadcastDynamic(name, g, x)
}

// unbroadcastStatic undoes a broadcast whose axes the symbolic shapes
// prove: g has the shape gd, and x's dims, aligned to the right, either
// equal g's (not broadcast) or are 1 (summed, kept as 1); g's extra leading
// axes are summed away. Equal tokens mean equal sizes; a 1 in x against an
// unknown size is summed too, which is right whether that size is 1 or
// not. ok is false when some axis cannot be decided (x's dim is symbolic
// and g's differs): the broadcast is then undone at run time.
func (c *gradCtx) unbroadcastStatic(name, g string, gd []string, x string) (string, bool) {
	xd, ok := c.s.shapes.dims[x]
	if !ok || len(xd) > len(gd) {
		return "", false
	}
	lead := len(gd) - len(xd)
	var axes []int64
	for i := 0; i < lead; i++ {
		axes = append(axes, int64(i))
	}
	for i, t := range xd {
		switch o := gd[lead+i]; {
		case t == o:
		case t == "1":
			axes = append(axes, int64(lead+i))
		default:
			return "", false
		}
	}
	if len(axes) == 0 {
		return g, true
	}
	p := name + "/unbroadcast"
	sum := c.op(p+"/ReduceSum", "ReduceSum", []string{g, c.b.Ints(c.tag+"/"+p+"/axes", axes...)}, ir.AttrInt("keepdims", 1))
	if lead > 0 {
		sum = c.op(p+"/Squeeze", "Squeeze", []string{sum, c.b.Ints(c.tag+"/"+p+"/lead", axes[:lead]...)})
	}
	return sum, true
}

// unbroadcastDynamic undoes a broadcast at run time: the axes where x's
// shape, padded to g's rank, is 1 and g's is not.
func (c *gradCtx) unbroadcastDynamic(name, g, x string) string {
	p := name + "/unbroadcast"
	sg := c.op(p+"/shape_g", "Shape", []string{g})
	sx := c.op(p+"/shape_x", "Shape", []string{x})
	rankDiff := c.op(p+"/rank_diff", "Sub", []string{c.op(p+"/rank_g", "Shape", []string{sg}), c.op(p+"/rank_x", "Shape", []string{sx})})
	ones := c.op(p+"/lead", "ConstantOfShape", []string{rankDiff}, ir.AttrTensor("value", ir.NewTensorI64("value", []int64{1}, []int64{1})))
	sxp := c.op(p+"/shape_x_padded", "Concat", []string{ones, sx}, ir.AttrInt("axis", 0))
	one := c.b.Scalar(c.tag+"/"+p+"/one", ir.Int64, 1)
	mask := c.op(p+"/broadcast", "And", []string{
		c.op(p+"/x_is_one", "Equal", []string{sxp, one}),
		c.op(p+"/g_not_one", "Not", []string{c.op(p+"/g_is_one", "Equal", []string{sg, one})}),
	})
	axes := c.op(p+"/axes", "Reshape", []string{c.op(p+"/NonZero", "NonZero", []string{mask}), c.b.Ints(c.tag+"/"+p+"/flat", -1)})
	sum := c.op(p+"/ReduceSum", "ReduceSum", []string{g, axes}, ir.AttrInt("keepdims", 1), ir.AttrInt("noop_with_empty_axes", 1))
	return c.op(p+"/Reshape", "Reshape", []string{sum, sx})
}

// constInts reads an int64 constant (initializer or Constant node).
func (c *gradCtx) constInts(v string) ([]int64, bool) {
	if v == "" {
		return nil, false
	}
	return int64Const(c.s.Model.Graph, c.producer(v), v)
}

// constTensor is v's value when v is an initializer or a Constant node's
// tensor, else nil.
func (c *gradCtx) constTensor(v string) *ir.Tensor {
	if t := c.s.Model.Graph.Initializer(v); t != nil {
		return t
	}
	if n := c.producer(v); n != nil && n.OpType == "Constant" {
		if a := n.Attr("value"); a != nil && a.GetT() != nil {
			t, _ := ir.TensorFromPB(a.GetT(), "")
			return t
		}
	}
	return nil
}

// constBool reads a one-element bool constant (initializer or Constant
// node).
func (c *gradCtx) constBool(v string) (bool, bool) {
	t := c.constTensor(v)
	if t == nil || t.DType != ir.Bool || t.External != nil || len(t.Raw) != 1 {
		return false, false
	}
	return t.Raw[0] != 0, true
}

// constFloat reads a one-element float constant (initializer or Constant
// node).
func (c *gradCtx) constFloat(v string) (float64, bool) {
	t := c.constTensor(v)
	if t == nil || !t.DType.IsFloat() {
		return 0, false
	}
	vals, err := t.Float64s()
	if err != nil || len(vals) != 1 {
		return 0, false
	}
	return vals[0], true
}

// staticDims returns the declared dims of an initializer or typed graph
// input.
func (c *gradCtx) staticDims(v string) ([]int64, bool) {
	g := c.s.Model.Graph
	if t := g.Initializer(v); t != nil {
		return t.Dims, true
	}
	if in := g.Input(v); in != nil && in.Type != nil && in.Type.Shape {
		dims := make([]int64, len(in.Type.Dims))
		for i, d := range in.Type.Dims {
			if !d.Known() {
				return nil, false
			}
			dims[i] = d.Value
		}
		return dims, true
	}
	return nil, false
}

// fixedDims are v's dims when all are numbers: declared (initializers,
// graph inputs) or inferred.
func (c *gradCtx) fixedDims(v string) ([]int64, bool) {
	if d, ok := c.staticDims(v); ok {
		return d, true
	}
	if c.s.shapes == nil {
		return nil, false
	}
	toks, ok := c.s.shapes.dims[v]
	if !ok {
		return nil, false
	}
	d := make([]int64, len(toks))
	for i, t := range toks {
		if d[i], ok = isNum(t); !ok {
			return nil, false
		}
	}
	return d, true
}

func (c *gradCtx) producer(v string) *ir.Node { return c.prod.of(v) }

// unexpanded is s when g, the gradient of output 0, is Expand(s, ·) (a
// reduction's gradient) and full provably has output 0's shape: a product
// of g and full may read s instead and broadcast it, one pass over the
// full shape instead of two (the Expand is then dead).
func (c *gradCtx) unexpanded(g, full string) string {
	if c.s.shapes == nil || !c.s.shapes.sameShape(full, c.O(0)) {
		return g
	}
	if p := c.producer(g); p != nil && p.OpType == "Expand" && p.Domain == "" {
		return p.Input(0)
	}
	return g
}

func gradIdentity(c *gradCtx) ([]string, error) {
	gi := c.grads()
	gi[0] = c.GO(0)
	return gi, nil
}

// gradDropout: an inference-mode Dropout (training_mode absent or a false
// constant, or ratio a constant 0) is the identity. In training mode it
// masks and rescales at random, a draw the backward cannot see: refused.
func gradDropout(c *gradCtx) ([]string, error) {
	if tm := c.n.Input(2); tm != "" {
		training, known := c.constBool(tm)
		ratio, zero := c.constFloat(c.n.Input(1))
		if (!known || training) && !(zero && ratio == 0) {
			return nil, fmt.Errorf("passes: %s runs Dropout in training mode (training_mode %s is not a false constant): its random mask has no gradient rule; export the model in eval mode (model.eval() before torch.onnx.export)", c.n, tm)
		}
	}
	return gradIdentity(c)
}

func gradCast(c *gradCtx) ([]string, error) {
	gi := c.grads()
	gi[0] = c.op("CastLike", "CastLike", []string{c.GO(0), c.I(0)})
	return gi, nil
}

func gradNeg(c *gradCtx) ([]string, error) {
	gi := c.grads()
	gi[0] = c.op("Neg", "Neg", []string{c.GO(0)})
	return gi, nil
}

func gradAddSub(c *gradCtx) ([]string, error) {
	gi := c.grads()
	if c.Need(0) {
		gi[0] = c.unbroadcast("dA", c.GO(0), c.O(0), c.I(0), c.I(1))
	}
	if c.Need(1) {
		g := c.GO(0)
		if c.n.OpType == "Sub" {
			g = c.op("dB/Neg", "Neg", []string{g})
		}
		gi[1] = c.unbroadcast("dB", g, c.O(0), c.I(1), c.I(0))
	}
	return gi, nil
}

func gradSum(c *gradCtx) ([]string, error) {
	gi := c.grads()
	for i := range gi {
		if c.Need(i) {
			gi[i] = c.unbroadcast(fmt.Sprintf("d%d", i), c.GO(0), c.O(0), c.I(i), "")
		}
	}
	return gi, nil
}

func gradTranspose(c *gradCtx) ([]string, error) {
	perm := c.n.AttrInts("perm")
	if perm == nil {
		return nil, c.errorf("Transpose without perm: its rank is unknown to dartc; export with an explicit perm")
	}
	inv := make([]int64, len(perm))
	for i, p := range perm {
		inv[p] = int64(i)
	}
	gi := c.grads()
	gi[0] = c.op("Transpose", "Transpose", []string{c.GO(0)}, ir.AttrInts("perm", inv...))
	return gi, nil
}

func gradReshapeLike(c *gradCtx) ([]string, error) {
	gi := c.grads()
	gi[0] = c.reshapeAs("Reshape", c.GO(0), c.I(0))
	return gi, nil
}

// reshapeAs reshapes v to the shape of like, read at run time. The shape
// is exact: a 0 in it is an empty dim, not "copy the input's" (allowzero,
// from opset 14).
func (c *gradCtx) reshapeAs(suffix, v, like string) string {
	shape := c.op(suffix+"/shape", "Shape", []string{like})
	if c.opset() >= 14 {
		return c.op(suffix, "Reshape", []string{v, shape}, ir.AttrInt("allowzero", 1))
	}
	return c.op(suffix, "Reshape", []string{v, shape})
}

func gradExpand(c *gradCtx) ([]string, error) {
	gi := c.grads()
	gi[0] = c.unbroadcast("dX", c.GO(0), c.O(0), c.I(0), "")
	return gi, nil
}

func gradConcat(c *gradCtx) ([]string, error) {
	axis := c.n.AttrInt("axis", 0)
	gi := c.grads()
	if sizes, ok := c.concatSizes(axis); ok {
		// One Split with constant sizes (the concatenated adapters).
		parts := c.b.OpN(c.tag+"/Split", "Split", []string{c.GO(0), c.b.Ints(c.tag+"/split", sizes...)}, len(sizes), ir.AttrInt("axis", axis))
		for i := range gi {
			if c.Need(i) {
				gi[i] = parts[i]
			}
		}
		return gi, nil
	}
	if sizes, ok := c.splitSizesOf(axis); ok {
		// The parts of a Split by a computed size vector, concatenated back
		// (block-attention's query blocks): one Split by the same sizes.
		parts := c.b.OpN(c.tag+"/Split", "Split", []string{c.GO(0), sizes}, len(c.n.Inputs), ir.AttrInt("axis", axis))
		for i := range gi {
			if c.Need(i) {
				gi[i] = parts[i]
			}
		}
		return gi, nil
	}
	axisIdx := c.b.Ints(c.tag+"/axis", axis)
	axes := c.b.Ints(c.tag+"/axes", axis)
	var start string
	for i, x := range c.n.Inputs {
		size := c.op(fmt.Sprintf("len%d", i), "Gather", []string{c.op(fmt.Sprintf("shape%d", i), "Shape", []string{x}), axisIdx})
		from := start
		if from == "" {
			from = c.b.Ints(c.tag+"/zero", 0)
		}
		end := c.op(fmt.Sprintf("end%d", i), "Add", []string{from, size})
		if c.Need(i) {
			gi[i] = c.op(fmt.Sprintf("d%d", i), "Slice", []string{c.GO(0), from, end, axes})
		}
		start = end
	}
	return gi, nil
}

// splitSizesOf returns the size vector of a Split whose parts, in order,
// have the sizes of the Concat's inputs along axis (by the shape
// inference's tokens), when there is one.
func (c *gradCtx) splitSizesOf(axis int64) (string, bool) {
	si := c.s.shapes
	if si == nil {
		return "", false
	}
	var toks []string
	for _, x := range c.n.Inputs {
		d, ok := si.dims[x]
		if !ok {
			return "", false
		}
		ax, ok := normAxis(axis, len(d))
		if !ok {
			return "", false
		}
		toks = append(toks, d[ax])
	}
	sp, ok := si.splits[strings.Join(toks, "+")]
	return sp.sizes, ok
}

// concatSizes are the sizes of the Concat inputs along axis, when every one
// is a number.
func (c *gradCtx) concatSizes(axis int64) ([]int64, bool) {
	var sizes []int64
	for _, x := range c.n.Inputs {
		d, ok := c.fixedDims(x)
		if !ok {
			return nil, false
		}
		ax, ok := normAxis(axis, len(d))
		if !ok {
			return nil, false
		}
		sizes = append(sizes, d[ax])
	}
	return sizes, len(sizes) > 0
}

func gradSplit(c *gradCtx) ([]string, error) {
	if g, ok := c.splitPrefixPad(); ok {
		gi := c.grads()
		gi[0] = g
		return gi, nil
	}
	parts := make([]string, len(c.n.Outputs))
	for i := range c.n.Outputs {
		parts[i] = c.GO(i)
		if parts[i] == "" {
			parts[i] = c.zerosLike(fmt.Sprintf("zero%d", i), c.O(i))
		}
	}
	gi := c.grads()
	gi[0] = c.op("Concat", "Concat", parts, ir.AttrInt("axis", c.n.AttrInt("axis", 0)))
	return gi, nil
}

// splitPrefixPad is the gradient of a two-way Split by a size vector whose
// second part nothing differentiates (a prefix cut off, as block-attention
// cuts keys): one Pad of the first part's gradient by the second size at
// the end of the axis, instead of zeros and a Concat. The pads vector
// depends on the sizes only, so CSE shares it between layers.
func (c *gradCtx) splitPrefixPad() (string, bool) {
	if len(c.n.Outputs) != 2 || c.GO(0) == "" || c.GO(1) != "" || c.I(1) == "" || c.s.shapes == nil {
		return "", false
	}
	if _, constSizes := c.constInts(c.I(1)); constSizes {
		return "", false
	}
	d, ok := c.s.shapes.dims[c.I(0)]
	if !ok {
		return "", false
	}
	rank := len(d)
	axis, ok := normAxis(c.n.AttrInt("axis", 0), rank)
	if !ok {
		return "", false
	}
	rest := c.op("rest", "Slice", []string{c.I(1), c.b.Ints(c.tag+"/one", 1), c.b.Ints(c.tag+"/two", 2)})
	parts := []string{c.b.Ints(c.tag+"/pads/before", make([]int64, rank+axis)...), rest}
	if after := rank - axis - 1; after > 0 {
		parts = append(parts, c.b.Ints(c.tag+"/pads/after", make([]int64, after)...))
	}
	pads := c.op("pads", "Concat", parts, ir.AttrInt("axis", 0))
	return c.op("Pad", "Pad", []string{c.GO(0), pads}), true
}

// gradSlice pads the gradient back with zeros, one sliced axis at a time:
// dX = Concat(zeros(prefix), dY, zeros(suffix)) along each axis. Starts
// and ends may be computed in the graph (TorchScript's rotate_half slices at
// Shape(x)/2); they are normalized at run time as Slice does: negative
// values count from the end, then clamped to [0, dim]. Axes must be
// constant and steps 1.
func gradSlice(c *gradCtx) ([]string, error) {
	var axes []int64
	if c.I(3) != "" {
		a, ok := c.constInts(c.I(3))
		if !ok {
			return nil, c.errorf("Slice with computed axes on an active path is not supported")
		}
		axes = a
	} else {
		starts, ok := c.constInts(c.I(1))
		if !ok {
			return nil, c.errorf("Slice without axes and with computed starts on an active path is not supported")
		}
		for i := range starts {
			axes = append(axes, int64(i))
		}
	}
	if c.I(4) != "" {
		steps, ok := c.constInts(c.I(4))
		if !ok {
			return nil, c.errorf("Slice with computed steps on an active path is not supported")
		}
		if c.reversal(steps) {
			// A whole axis reversed is a permutation that undoes itself:
			// the gradient is the same Slice of the output's gradient.
			gi := c.grads()
			gi[0] = c.op("reversed", "Slice", []string{c.GO(0), c.I(1), c.I(2), c.I(3), c.I(4)})
			return gi, nil
		}
		for _, st := range steps {
			if st != 1 {
				return nil, c.errorf("Slice with step %d on an active path is not supported (only 1, or −1 over a whole axis)", st)
			}
		}
	}
	if g, ok := c.slicePad(axes); ok {
		gi := c.grads()
		gi[0] = g
		return gi, nil
	}
	shapeX := c.op("shape_x", "Shape", []string{c.I(0)})
	zero := c.b.Ints(c.tag+"/zero", 0)
	g := c.GO(0)
	for i, a := range axes {
		p := fmt.Sprintf("axis%d", i)
		idx := c.b.Ints(c.tag+"/"+p+"/i", int64(i))
		dim := c.op(p+"/dim", "Gather", []string{shapeX, c.b.Ints(c.tag+"/"+p+"/index", a)})
		bound := func(name, v string) string {
			x := c.op(p+"/"+name+"/raw", "Gather", []string{v, idx})
			neg := c.op(p+"/"+name+"/neg", "Less", []string{x, zero})
			x = c.op(p+"/"+name+"/wrapped", "Where", []string{neg, c.op(p+"/"+name+"/plus_dim", "Add", []string{x, dim}), x})
			return c.op(p+"/"+name, "Max", []string{c.op(p+"/"+name+"/min", "Min", []string{x, dim}), zero})
		}
		st := bound("start", c.I(1))
		en := c.op(p+"/end_clamped", "Max", []string{bound("end", c.I(2)), st})
		shapeG := c.op(p+"/shape_g", "Shape", []string{g})
		at := c.b.Ints(c.tag+"/"+p+"/at", a)
		preShape := c.op(p+"/pre_shape", "ScatterElements", []string{shapeG, at, st}, ir.AttrInt("axis", 0))
		postShape := c.op(p+"/post_shape", "ScatterElements", []string{shapeG, at, c.op(p+"/post_len", "Sub", []string{dim, en})}, ir.AttrInt("axis", 0))
		pre := c.op(p+"/pre", "CastLike", []string{c.op(p+"/pre_zeros", "ConstantOfShape", []string{preShape}), g})
		post := c.op(p+"/post", "CastLike", []string{c.op(p+"/post_zeros", "ConstantOfShape", []string{postShape}), g})
		g = c.op(p+"/Concat", "Concat", []string{pre, g, post}, ir.AttrInt("axis", a))
	}
	gi := c.grads()
	gi[0] = g
	return gi, nil
}

// reversal reports whether a Slice with these steps reverses whole axes
// (reversesAxis on every sliced axis).
func (c *gradCtx) reversal(steps []int64) bool {
	starts, ok1 := c.constInts(c.I(1))
	ends, ok2 := c.constInts(c.I(2))
	if !ok1 || !ok2 || len(starts) != len(steps) || len(ends) != len(steps) || len(steps) == 0 {
		return false
	}
	for i := range steps {
		if !reversesAxis(starts[i], ends[i], steps[i]) {
			return false
		}
	}
	return true
}

// slicePad is the Slice gradient as one Pad with constant pads, when the
// symbolic shapes decide them: x's rank is known, starts and ends are
// constants, and on each sliced axis either x's size is a number, or the
// slice starts at a non-negative index and runs to the end.
func (c *gradCtx) slicePad(axes []int64) (string, bool) {
	si := c.s.shapes
	if si == nil {
		return "", false
	}
	xd, ok := si.dims[c.I(0)]
	if !ok {
		return "", false
	}
	ints := func(v string) ([]int64, bool) {
		if x, ok := c.constInts(v); ok {
			return x, true
		}
		return si.constInts(v)
	}
	starts, ok1 := ints(c.I(1))
	ends, ok2 := ints(c.I(2))
	if !ok1 || !ok2 || len(starts) != len(axes) || len(ends) != len(axes) {
		return "", false
	}
	rank := len(xd)
	pads := make([]int64, 2*rank)
	seen := map[int]bool{}
	for k, a := range axes {
		ax, ok := normAxis(a, rank)
		if !ok || seen[ax] {
			return "", false
		}
		seen[ax] = true
		st, en := starts[k], ends[k]
		if dim, ok := isNum(xd[ax]); ok {
			clamp := func(v int64) int64 {
				if v < 0 {
					v += dim
				}
				return max(0, min(v, dim))
			}
			st = clamp(st)
			en = max(clamp(en), st)
			pads[ax], pads[rank+ax] = st, dim-en
			continue
		}
		if st < 0 || en < 1<<31 {
			return "", false
		}
		pads[ax] = st // to the end: nothing after
	}
	p := c.b.Ints(c.tag+"/pads", pads...)
	return c.op("Pad", "Pad", []string{c.GO(0), p}), true
}

func gradReduce(c *gradCtx) ([]string, error) {
	var axes []int64
	hasAxes := false
	if a := c.n.Attr("axes"); a != nil {
		axes, hasAxes = a.GetInts(), true
	} else if c.I(1) != "" {
		v, ok := c.constInts(c.I(1))
		if !ok {
			return nil, c.errorf("computed reduction axes on an active path are not supported")
		}
		axes, hasAxes = v, true
	}
	g := c.GO(0)
	if hasAxes && len(axes) == 0 && c.n.AttrInt("noop_with_empty_axes", 0) == 1 {
		gi := c.grads()
		gi[0] = g
		return gi, nil
	}
	if c.n.AttrInt("keepdims", 1) == 0 && len(axes) > 0 {
		g = c.op("Unsqueeze", "Unsqueeze", []string{g, c.b.Ints(c.tag+"/axes", axes...)})
	}
	if c.n.OpType == "ReduceMean" { // divided while it has the reduced shape
		n := c.op("count", "Div", []string{
			c.op("size_x", "Cast", []string{c.op("Size_x", "Size", []string{c.I(0)})}, ir.AttrInt("to", int64(ir.Float64))),
			c.op("size_y", "Cast", []string{c.op("Size_y", "Size", []string{c.O(0)})}, ir.AttrInt("to", int64(ir.Float64))),
		})
		g = c.op("Div", "Div", []string{g, c.op("count/CastLike", "CastLike", []string{n, g})})
	}
	shapeX := c.op("shape_x", "Shape", []string{c.I(0)})
	g = c.op("Expand", "Expand", []string{g, shapeX})
	gi := c.grads()
	gi[0] = g
	return gi, nil
}

func gradWhere(c *gradCtx) ([]string, error) {
	zero := c.like("zero", 0, c.GO(0))
	gi := c.grads()
	if c.Need(1) {
		gi[1] = c.unbroadcast("dX", c.op("dX/Where", "Where", []string{c.I(0), c.GO(0), zero}), c.O(0), c.I(1), "")
	}
	if c.Need(2) {
		gi[2] = c.unbroadcast("dY", c.op("dY/Where", "Where", []string{c.I(0), zero, c.GO(0)}), c.O(0), c.I(2), "")
	}
	return gi, nil
}

func gradTrilu(c *gradCtx) ([]string, error) {
	in := []string{c.GO(0)}
	if c.I(1) != "" {
		in = append(in, c.I(1))
	}
	gi := c.grads()
	gi[0] = c.op("Trilu", "Trilu", in, ir.AttrInt("upper", c.n.AttrInt("upper", 1)))
	return gi, nil
}

func gradMul(c *gradCtx) ([]string, error) {
	if gi, ok := gradSiLU(c); ok {
		return gi, nil
	}
	gi := c.grads()
	if c.Need(0) {
		gi[0] = c.unbroadcast("dA", c.op("dA/Mul", "Mul", []string{c.unexpanded(c.GO(0), c.I(1)), c.I(1)}), c.O(0), c.I(0), c.I(1))
	}
	if c.Need(1) {
		gi[1] = c.unbroadcast("dB", c.op("dB/Mul", "Mul", []string{c.unexpanded(c.GO(0), c.I(0)), c.I(0)}), c.O(0), c.I(1), c.I(0))
	}
	return gi, nil
}

// gradSiLU is the gradient of y = x·Sigmoid(x) (either order) as one
// derivative for x, dx = dy·(s + y·(1 − s)): four passes over x's shape
// where the product's and the Sigmoid's rules take six and a Sum. The
// Sigmoid gets no gradient through this product (folded); other readers
// of it still send theirs.
func gradSiLU(c *gradCtx) ([]string, bool) {
	if c.s.shapes == nil || !c.s.shapes.sameShape(c.I(0), c.O(0)) || !c.s.shapes.sameShape(c.I(1), c.O(0)) {
		return nil, false
	}
	xi := -1
	for i := range 2 {
		if p := c.producer(c.I(1 - i)); p != nil && p.OpType == "Sigmoid" && p.Domain == "" && p.Input(0) == c.I(i) {
			xi = i
		}
	}
	if xi < 0 || !c.Need(xi) {
		return nil, false
	}
	s, y := c.I(1-xi), c.O(0)
	oneMinus := c.op("silu/1-s", "Sub", []string{c.like("one", 1, s), s})
	d := c.op("silu/d", "Add", []string{s, c.op("silu/y*(1-s)", "Mul", []string{y, oneMinus})})
	gi := c.grads()
	gi[xi] = c.op("silu/dX", "Mul", []string{c.unexpanded(c.GO(0), y), d})
	if c.Need(1 - xi) {
		gi[1-xi] = folded
	}
	return gi, true
}

// gradMatMul: dA = dY·Bᵀ, dB = Aᵀ·dY. A rank-2 B (a weight or an adapter)
// takes 2-D Gemms on flattened activations, never materializing Bᵀ (ORT
// would fold a Transpose of a weight into a second copy); B = Transpose(W)
// (dynamo) uses W directly; other ranks (attention) use MatMul with the
// other operand's last two axes swapped (a Transpose ORT fuses into the
// product, or none when the operand is already a transposed value), with
// broadcasting undone statically where the symbolic shapes allow. A rank-1
// operand is promoted as MatMul does (A: [1, k], B: [k, 1]) and its
// gradient reshaped back; operands of unknown rank use Einsum.
func gradMatMul(c *gradCtx) ([]string, error) {
	gi := c.grads()
	gy, a, bm := c.GO(0), c.I(0), c.I(1)
	if p := c.producer(bm); p != nil && p.OpType == "Transpose" && isSwap2(p) && !c.Need(1) {
		if dims, ok := c.staticDims(p.Input(0)); ok && len(dims) == 2 {
			gi[0] = c.op("dA/MatMul", "MatMul", []string{gy, p.Input(0)})
			return gi, nil
		}
	}
	if dims, ok := c.fixedDims(bm); ok && len(dims) == 2 {
		k, n := dims[0], dims[1]
		gy2 := c.op("dY/flat", "Reshape", []string{gy, c.b.Ints(c.tag+"/flat_n", -1, n)})
		if c.Need(0) {
			ga := c.op("dA/Gemm", "Gemm", []string{gy2, bm}, ir.AttrInt("transB", 1))
			gi[0] = c.reshapeAs("dA", ga, a)
		}
		if c.Need(1) {
			a2 := c.op("A/flat", "Reshape", []string{a, c.b.Ints(c.tag+"/flat_k", -1, k)})
			gi[1] = c.op("dB/Gemm", "Gemm", []string{a2, gy2}, ir.AttrInt("transA", 1))
		}
		return gi, nil
	}
	if c.s.shapes != nil {
		ad, okA := c.s.shapes.dims[a]
		bd, okB := c.s.shapes.dims[bm]
		if okA && okB && len(ad) >= 1 && len(bd) >= 1 && (len(ad) == 1 || len(bd) == 1) {
			return gradMatMulVector(c, ad, bd)
		}
		if okA && okB && len(ad) >= 2 && len(bd) >= 2 {
			batch := c.s.shapes.broadcast(ad[:len(ad)-2], bd[:len(bd)-2])
			if c.Need(0) {
				ga := c.op("dA/MatMul", "MatMul", []string{gy, c.swapLast("B/T", bm, len(bd))})
				gi[0] = c.unbroadcastDims("dA", ga, append(append([]string{}, batch...), ad[len(ad)-2:]...), a)
			}
			if c.Need(1) {
				gb := c.op("dB/MatMul", "MatMul", []string{c.swapLast("A/T", a, len(ad)), gy})
				gi[1] = c.unbroadcastDims("dB", gb, append(append([]string{}, batch...), bd[len(bd)-2:]...), bm)
			}
			return gi, nil
		}
	}
	if c.Need(0) {
		ga := c.op("dA/Einsum", "Einsum", []string{gy, bm}, ir.AttrString("equation", "...ij,...kj->...ik"))
		gi[0] = c.unbroadcast("dA", ga, "", a, "")
	}
	if c.Need(1) {
		gb := c.op("dB/Einsum", "Einsum", []string{a, gy}, ir.AttrString("equation", "...ij,...ik->...jk"))
		gi[1] = c.unbroadcast("dB", gb, "", bm, "")
	}
	return gi, nil
}

// isSwap2 reports whether a Transpose swaps the two axes of a matrix: no
// perm (reversed axes) or perm [1, 0].
func isSwap2(t *ir.Node) bool {
	a := t.Attr("perm")
	if a == nil {
		return true
	}
	p := a.GetInts()
	return len(p) == 2 && p[0] == 1 && p[1] == 0
}

// gradMatMulVector is MatMul's gradient when A or B has rank 1 (dims ad,
// bd): the vector is promoted as MatMul promotes it, A to [1, k] and B to
// [k, 1], the squeezed axes are put back into dY, the matrix formulas
// apply, and each gradient is reshaped to its operand.
func gradMatMulVector(c *gradCtx, ad, bd []string) ([]string, error) {
	gi := c.grads()
	gy, a, bm := c.GO(0), c.I(0), c.I(1)
	var gyAxes []int64
	if len(ad) == 1 {
		a = c.op("A/row", "Unsqueeze", []string{a, c.b.Ints(c.tag+"/A/row/axes", 0)})
		ad = []string{"1", ad[0]}
		c.s.shapes.dims[a] = ad
		gyAxes = append(gyAxes, -2)
	}
	if len(bd) == 1 {
		bm = c.op("B/col", "Unsqueeze", []string{bm, c.b.Ints(c.tag+"/B/col/axes", -1)})
		bd = []string{bd[0], "1"}
		c.s.shapes.dims[bm] = bd
		gyAxes = append(gyAxes, -1)
	}
	gy = c.op("dY/promoted", "Unsqueeze", []string{gy, c.b.Ints(c.tag+"/dY/promoted/axes", gyAxes...)})
	batch := c.s.shapes.broadcast(ad[:len(ad)-2], bd[:len(bd)-2])
	if c.Need(0) {
		ga := c.op("dA/MatMul", "MatMul", []string{gy, c.swapLast("B/T", bm, len(bd))})
		ga = c.unbroadcastDims("dA/promoted", ga, append(append([]string{}, batch...), ad[len(ad)-2:]...), a)
		gi[0] = c.reshapeAs("dA", ga, c.I(0))
	}
	if c.Need(1) {
		gb := c.op("dB/MatMul", "MatMul", []string{c.swapLast("A/T", a, len(ad)), gy})
		gb = c.unbroadcastDims("dB/promoted", gb, append(append([]string{}, batch...), bd[len(bd)-2:]...), bm)
		gi[1] = c.reshapeAs("dB", gb, c.I(1))
	}
	return gi, nil
}

// swapLast is v with its last two axes swapped. When v is itself a
// Transpose whose composition with the swap is the identity (attention's
// Kᵀ), it is the Transpose's input: no copy.
func (c *gradCtx) swapLast(name, v string, rank int) string {
	perm := make([]int64, rank)
	for i := range perm {
		perm[i] = int64(i)
	}
	perm[rank-2], perm[rank-1] = perm[rank-1], perm[rank-2]
	if p := c.producer(v); p != nil && p.OpType == "Transpose" {
		if pp := p.AttrInts("perm"); len(pp) == rank {
			identity := true
			for i := range perm {
				if pp[perm[i]] != int64(i) {
					identity = false
				}
			}
			if identity {
				return p.Input(0)
			}
		}
	}
	return c.op(name, "Transpose", []string{v}, ir.AttrInts("perm", perm...))
}

// unbroadcastDims undoes the broadcast of x in a gradient g whose symbolic
// shape is gd, statically when the shapes decide it.
func (c *gradCtx) unbroadcastDims(name, g string, gd []string, x string) string {
	if r, ok := c.unbroadcastStatic(name, g, gd, x); ok {
		return r
	}
	return c.unbroadcastDynamic(name, g, x)
}

// gradGemm: Y = α·op(A)·op(B) + β·C.
func gradGemm(c *gradCtx) ([]string, error) {
	ta, tb := c.n.AttrInt("transA", 0), c.n.AttrInt("transB", 0)
	alpha, beta := c.n.AttrFloat("alpha", 1), c.n.AttrFloat("beta", 1)
	gy := c.GO(0)
	gi := c.grads()
	gemm := func(name, x, y string, tx, ty int64) string {
		return c.op(name, "Gemm", []string{x, y}, ir.AttrInt("transA", tx), ir.AttrInt("transB", ty), ir.AttrFloat("alpha", alpha))
	}
	if c.Need(0) {
		if ta == 0 {
			gi[0] = gemm("dA", gy, c.I(1), 0, 1-tb)
		} else {
			gi[0] = gemm("dA", c.I(1), gy, tb, 1)
		}
	}
	if c.Need(1) {
		if tb == 0 {
			gi[1] = gemm("dB", c.I(0), gy, 1-ta, 0)
		} else {
			gi[1] = gemm("dB", gy, c.I(0), 1, ta)
		}
	}
	if c.Need(2) {
		g := gy
		if beta != 1 {
			g = c.op("dC/scale", "Mul", []string{gy, c.like("beta", float64(beta), gy)})
		}
		gi[2] = c.unbroadcast("dC", g, c.O(0), c.I(2), "")
	}
	return gi, nil
}

func gradDiv(c *gradCtx) ([]string, error) {
	gi := c.grads()
	if c.Need(0) {
		gi[0] = c.unbroadcast("dA", c.op("dA/Div", "Div", []string{c.unexpanded(c.GO(0), c.I(1)), c.I(1)}), c.O(0), c.I(0), c.I(1))
	}
	if c.Need(1) {
		num := c.op("dB/Mul", "Mul", []string{c.unexpanded(c.GO(0), c.O(0)), c.O(0)})
		gi[1] = c.unbroadcast("dB", c.op("dB/Neg", "Neg", []string{c.op("dB/Div", "Div", []string{num, c.I(1)})}), c.O(0), c.I(1), c.I(0))
	}
	return gi, nil
}

func gradPow(c *gradCtx) ([]string, error) {
	if e, ok := c.constFloat(c.I(1)); ok && e == 2 {
		// RMSNorm's square: 2x·dy, without a run-time Pow; when dy is a
		// reduction's expanded gradient, 2 scales it before it broadcasts.
		gi := c.grads()
		if gy := c.unexpanded(c.GO(0), c.I(0)); gy != c.GO(0) {
			gi[0] = c.op("dX", "Mul", []string{c.I(0), c.op("dY*2", "Mul", []string{gy, c.like("two", 2, gy)})})
			return gi, nil
		}
		d := c.op("dpow", "Mul", []string{c.I(0), c.like("two", 2, c.I(0))})
		gi[0] = c.op("dX", "Mul", []string{c.GO(0), d})
		return gi, nil
	}
	p := c.op("p", "CastLike", []string{c.I(1), c.I(0)})
	pm1 := c.op("p_minus_1", "Sub", []string{p, c.like("one", 1, c.I(0))})
	d := c.op("dpow", "Mul", []string{p, c.op("Pow", "Pow", []string{c.I(0), pm1})})
	gi := c.grads()
	gi[0] = c.unbroadcast("dX", c.op("dX", "Mul", []string{c.GO(0), d}), c.O(0), c.I(0), c.I(1))
	return gi, nil
}

func gradUnary(c *gradCtx) ([]string, error) {
	// Every form below multiplies dy by a value of y's shape.
	gy, x, y := c.unexpanded(c.GO(0), c.O(0)), c.I(0), c.O(0)
	var g string
	switch c.n.OpType {
	case "Sqrt": // dy/dx = 1 / (2·y)
		g = c.op("Div", "Div", []string{c.op("Mul", "Mul", []string{gy, c.like("half", 0.5, gy)}), y})
	case "Reciprocal": // −y²
		g = c.op("Neg", "Neg", []string{c.op("Mul", "Mul", []string{gy, c.op("y2", "Mul", []string{y, y})})})
	case "Exp":
		g = c.op("Mul", "Mul", []string{gy, y})
	case "Log":
		g = c.op("Div", "Div", []string{gy, x})
	case "Sigmoid": // y·(1 − y)
		d := c.op("d", "Mul", []string{y, c.op("1-y", "Sub", []string{c.like("one", 1, y), y})})
		g = c.op("Mul", "Mul", []string{gy, d})
	case "Tanh": // 1 − y²
		d := c.op("d", "Sub", []string{c.like("one", 1, y), c.op("y2", "Mul", []string{y, y})})
		g = c.op("Mul", "Mul", []string{gy, d})
	case "Cos":
		g = c.op("Neg", "Neg", []string{c.op("Mul", "Mul", []string{gy, c.op("Sin", "Sin", []string{x})})})
	case "Sin":
		g = c.op("Mul", "Mul", []string{gy, c.op("Cos", "Cos", []string{x})})
	default:
		return nil, c.errorf("no unary rule")
	}
	gi := c.grads()
	gi[0] = g
	return gi, nil
}

func gradSoftmax(c *gradCtx) ([]string, error) {
	if c.opset() < 13 {
		return nil, c.errorf("Softmax before opset 13 flattens to 2-D; re-export with opset ≥ 13")
	}
	axis := c.n.AttrInt("axis", -1)
	axes := c.b.Ints(c.tag+"/axes", axis)
	gy, y := c.GO(0), c.O(0)
	gi := c.grads()
	if c.n.OpType == "Softmax" { // y ⊙ (dy − Σ dy⊙y)
		s := c.op("ReduceSum", "ReduceSum", []string{c.op("dy*y", "Mul", []string{gy, y}), axes}, ir.AttrInt("keepdims", 1))
		gi[0] = c.op("Mul", "Mul", []string{y, c.op("Sub", "Sub", []string{gy, s})})
	} else { // dy − exp(y) ⊙ Σ dy
		s := c.op("ReduceSum", "ReduceSum", []string{gy, axes}, ir.AttrInt("keepdims", 1))
		gi[0] = c.op("Sub", "Sub", []string{gy, c.op("Mul", "Mul", []string{c.op("Exp", "Exp", []string{y}), s})})
	}
	return gi, nil
}
