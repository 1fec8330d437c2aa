package passes

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/ir/onnxpb"
	"github.com/dartc/dartc/runtime"
)

// gradCase is a central-difference check of one rule: a one-node graph in
// float64 whose differentiable inputs get random values, and whose outputs
// are seeded with random cotangents dy. The scalar L = Σ dy·y is
// differentiated by the rule and by central differences.
type gradCase struct {
	name   string
	op     string
	inputs []caseInput
	attrs  []*onnxpb.AttributeProto
	nOut   int
	opset  int64
	tol    float64 // max relative error
	// expand runs ExpandFunctions first: the case checks the gradient
	// through an opset-23 function op's expansion.
	expand bool
	// nodes, when set, replace the single op: a small graph reading the
	// inputs x0, x1, … and writing the outputs y0, y1, … (rules that look
	// at their neighbours).
	nodes []*ir.Node
}

// nd is a node of a multi-node case.
func nd(op string, ins []string, out string, a ...*onnxpb.AttributeProto) *ir.Node {
	return &ir.Node{Name: "/" + out, OpType: op, Inputs: ins, Outputs: []string{out}, Attrs: a}
}

type caseInput struct {
	shape  []int64
	active bool
	// constant inputs (initializers)
	ints  []int64
	bools []bool
	f64   []float64
	// lo/hi bound random values of active inputs (keeps Log, Sqrt, Div off
	// their singularities)
	lo, hi float64
}

func act(shape ...int64) caseInput                 { return caseInput{shape: shape, active: true, lo: -1.5, hi: 1.5} }
func pos(shape ...int64) caseInput                 { return caseInput{shape: shape, active: true, lo: 0.5, hi: 2} }
func ints(v ...int64) caseInput                    { return caseInput{shape: []int64{int64(len(v))}, ints: v} }
func fconst(shape []int64, v ...float64) caseInput { return caseInput{shape: shape, f64: v} }

var gradCases = []gradCase{
	{name: "Identity", op: "Identity", inputs: []caseInput{act(2, 3)}},
	{name: "Dropout", op: "Dropout", inputs: []caseInput{act(2, 3)}},
	{name: "Cast", op: "Cast", inputs: []caseInput{act(2, 3)}, attrs: attrs(ir.AttrInt("to", int64(ir.Float64)))},
	{name: "CastLike", op: "CastLike", inputs: []caseInput{act(2, 3), fconst(nil, 1)}},
	{name: "Neg", op: "Neg", inputs: []caseInput{act(3)}},
	{name: "Add/broadcast", op: "Add", inputs: []caseInput{act(2, 3, 4), act(3, 1)}},
	{name: "Sub/broadcast", op: "Sub", inputs: []caseInput{act(2, 1), act(2, 3)}},
	{name: "Sum", op: "Sum", inputs: []caseInput{act(2, 3), act(3), act(1, 1)}},
	{name: "Transpose", op: "Transpose", inputs: []caseInput{act(2, 3, 4)}, attrs: attrs(ir.AttrInts("perm", 1, 2, 0))},
	{name: "Reshape", op: "Reshape", inputs: []caseInput{act(2, 6), ints(3, 4)}},
	{name: "Squeeze", op: "Squeeze", inputs: []caseInput{act(2, 1, 3), ints(1)}},
	{name: "Unsqueeze", op: "Unsqueeze", inputs: []caseInput{act(2, 3), ints(0, 3)}},
	{name: "Flatten", op: "Flatten", inputs: []caseInput{act(2, 3, 2)}, attrs: attrs(ir.AttrInt("axis", 1))},
	{name: "Expand", op: "Expand", inputs: []caseInput{act(3, 1), ints(2, 3, 4)}},
	{name: "Concat", op: "Concat", inputs: []caseInput{act(2, 3), act(2, 2), fconst([]int64{2, 1}, 1, 2)}, attrs: attrs(ir.AttrInt("axis", -1))},
	{name: "Split", op: "Split", inputs: []caseInput{act(2, 6), ints(2, 4)}, attrs: attrs(ir.AttrInt("axis", 1)), nOut: 2},
	{name: "Slice", op: "Slice", inputs: []caseInput{act(4, 6), ints(1, -4), ints(3, 1000), ints(0, 1)}},
	{name: "Slice/rotate-half", op: "Slice", inputs: []caseInput{act(2, 3, 8), ints(4), ints(math.MaxInt64), ints(-1)}},
	{name: "Slice/reversed", op: "Slice", inputs: []caseInput{act(2, 3, 2, 4), ints(-1), ints(math.MinInt64), ints(2), ints(-1)}},
	{name: "ReduceSum", op: "ReduceSum", inputs: []caseInput{act(2, 3, 4), ints(1)}, attrs: attrs(ir.AttrInt("keepdims", 0))},
	{name: "ReduceMean", op: "ReduceMean", inputs: []caseInput{act(2, 3, 4)}, attrs: attrs(ir.AttrInts("axes", -1))},
	{name: "Where", op: "Where", inputs: []caseInput{{shape: []int64{2, 3}, bools: []bool{true, false, true, false, false, true}}, act(2, 3), act(1, 3)}},
	{name: "Trilu", op: "Trilu", inputs: []caseInput{act(3, 3)}, attrs: attrs(ir.AttrInt("upper", 0))},
	{name: "Mul/broadcast", op: "Mul", inputs: []caseInput{act(2, 3), act(3)}},
	{name: "Mul/scalar-const", op: "Mul", inputs: []caseInput{act(2, 3), fconst(nil, 0.7)}},
	{name: "MatMul/weight", op: "MatMul", inputs: []caseInput{act(2, 3, 4), act(4, 5)}},
	{name: "MatMul/frozen-weight", op: "MatMul", inputs: []caseInput{act(2, 3, 4), fconst([]int64{4, 2}, 1, -2, 0.5, 3, -1, 2, 0.25, 1)}},
	{name: "MatMul/attention", op: "MatMul", inputs: []caseInput{act(2, 2, 3, 4), act(2, 2, 4, 3)}},
	{name: "MatMul/broadcast", op: "MatMul", inputs: []caseInput{act(2, 3, 4), act(1, 4, 2)}},
	{name: "MatMul/vector-B", op: "MatMul", inputs: []caseInput{act(2, 3, 4), act(4)}},
	{name: "MatMul/vector-A", op: "MatMul", inputs: []caseInput{act(4), act(2, 4, 5)}},
	{name: "MatMul/vectors", op: "MatMul", inputs: []caseInput{act(4), act(4), ints(0)}, // a dot product, as [1]
		nodes: []*ir.Node{nd("MatMul", []string{"x0", "x1"}, "dot"), nd("Unsqueeze", []string{"dot", "x2"}, "y0")}},
	// A Transpose that keeps the axes (perm [0, 1]) is not Wᵀ: the dynamo
	// shortcut must not take it.
	{name: "MatMul/Transpose-identity-perm", op: "MatMul",
		inputs: []caseInput{act(2, 3), fconst([]int64{3, 3}, 1, 2, 3, -1, 0.5, 4, 2, -3, 1)},
		nodes:  []*ir.Node{nd("Transpose", []string{"x1"}, "wt", ir.AttrInts("perm", 0, 1)), nd("MatMul", []string{"x0", "wt"}, "y0")}},
	{name: "Gemm/transB", op: "Gemm", inputs: []caseInput{act(3, 4), act(5, 4), act(5)}, attrs: attrs(ir.AttrInt("transB", 1), ir.AttrFloat("alpha", 0.75), ir.AttrFloat("beta", 1.25))},
	{name: "Gemm/transA", op: "Gemm", inputs: []caseInput{act(4, 3), act(4, 2)}, attrs: attrs(ir.AttrInt("transA", 1))},
	{name: "Div", op: "Div", inputs: []caseInput{act(2, 3), pos(2, 3)}},
	{name: "Div/broadcast", op: "Div", inputs: []caseInput{act(2, 3), pos(2, 1)}},
	{name: "Pow", op: "Pow", inputs: []caseInput{pos(2, 3), fconst(nil, 2)}},
	{name: "Pow/fractional", op: "Pow", inputs: []caseInput{pos(2, 3), fconst(nil, -0.5)}},
	{name: "Sqrt", op: "Sqrt", inputs: []caseInput{pos(2, 3)}},
	{name: "Reciprocal", op: "Reciprocal", inputs: []caseInput{pos(2, 3)}},
	{name: "Exp", op: "Exp", inputs: []caseInput{act(2, 3)}},
	{name: "Log", op: "Log", inputs: []caseInput{pos(2, 3)}},
	{name: "Sigmoid", op: "Sigmoid", inputs: []caseInput{act(2, 3)}},
	{name: "Tanh", op: "Tanh", inputs: []caseInput{act(2, 3)}},
	{name: "Cos", op: "Cos", inputs: []caseInput{act(2, 3)}},
	{name: "Sin", op: "Sin", inputs: []caseInput{act(2, 3)}},
	{name: "Softmax", op: "Softmax", inputs: []caseInput{act(2, 5)}},
	// Rules that read their neighbours: x·Sigmoid(x) as one derivative
	// (also with the Sigmoid first and read by another product), and the
	// products of a reduction's gradient with a full-shape value.
	{name: "Mul/silu", op: "Mul", inputs: []caseInput{act(2, 3)},
		nodes: []*ir.Node{nd("Sigmoid", []string{"x0"}, "s"), nd("Mul", []string{"x0", "s"}, "y0")}},
	{name: "Mul/silu-shared-sigmoid", op: "Mul", inputs: []caseInput{act(2, 3), act(2, 3)}, nOut: 2,
		nodes: []*ir.Node{nd("Sigmoid", []string{"x0"}, "s"), nd("Mul", []string{"s", "x0"}, "y0"), nd("Mul", []string{"s", "x1"}, "y1")}},
	{name: "Mul/rmsnorm", op: "Pow",
		inputs: []caseInput{act(2, 3, 4), act(4), fconst(nil, 2), fconst(nil, 1e-6), fconst(nil, 1)},
		nodes: []*ir.Node{
			nd("Pow", []string{"x0", "x2"}, "sq"), nd("ReduceMean", []string{"sq"}, "ms", ir.AttrInts("axes", -1)),
			nd("Add", []string{"ms", "x3"}, "v"), nd("Sqrt", []string{"v"}, "rs"), nd("Div", []string{"x4", "rs"}, "r"),
			nd("Mul", []string{"x0", "r"}, "h"), nd("Mul", []string{"x1", "h"}, "y0")}},
	{name: "Mul/reduced", op: "Mul", inputs: []caseInput{act(2, 3), act(2, 3)},
		nodes: []*ir.Node{nd("Mul", []string{"x0", "x1"}, "p"), nd("ReduceMean", []string{"p"}, "y0", ir.AttrInts("axes", 1))}},
	{name: "Div/reduced", op: "Div", inputs: []caseInput{act(2, 3), pos(2, 3), ints(1)},
		nodes: []*ir.Node{nd("Div", []string{"x0", "x1"}, "q"), nd("ReduceSum", []string{"q", "x2"}, "y0", ir.AttrInt("keepdims", 0))}},
	{name: "Exp/reduced", op: "Exp", inputs: []caseInput{act(2, 3), ints(0)},
		nodes: []*ir.Node{nd("Exp", []string{"x0"}, "e"), nd("ReduceSum", []string{"e", "x1"}, "y0")}},
	{name: "LogSoftmax", op: "LogSoftmax", inputs: []caseInput{act(2, 3, 4)}, attrs: attrs(ir.AttrInt("axis", 1))},
	// opset-23 functions, through their expansions (stash_type double keeps
	// RMSNormalization's statistics in float64).
	{name: "RMSNormalization/expanded", op: "RMSNormalization", opset: 23, expand: true,
		inputs: []caseInput{act(2, 3, 8), act(8)}, attrs: attrs(ir.AttrInt("stash_type", int64(ir.Float64)))},
	{name: "RotaryEmbedding/expanded", op: "RotaryEmbedding", opset: 23, expand: true,
		inputs: []caseInput{act(2, 3, 16), act(2, 3, 2), act(2, 3, 2)}, attrs: attrs(ir.AttrInt("num_heads", 4))},
	{name: "Attention/expanded-GQA-causal", op: "Attention", opset: 23, expand: true,
		inputs: []caseInput{act(2, 3, 16), act(2, 3, 8), act(2, 3, 8)},
		attrs:  attrs(ir.AttrInt("q_num_heads", 4), ir.AttrInt("kv_num_heads", 2), ir.AttrInt("is_causal", 1))},
}

func attrs(a ...*onnxpb.AttributeProto) []*onnxpb.AttributeProto { return a }

// TestEveryRuleHasGradCheck fails when a registered rule with a gradient
// has no central-difference case.
func TestEveryRuleHasGradCheck(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range gradCases {
		covered[c.op] = true
	}
	var missing []string
	for op, kind := range RuleOps() {
		if kind != "zero" && !covered[op] {
			missing = append(missing, op)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("gradient rules without a central-difference test: %v", missing)
	}
}

func TestGradRulesCentralDifference(t *testing.T) {
	orttest.Init(t)
	for i, c := range gradCases {
		// Fixed dims take the static paths (undoing broadcasts at compile
		// time); symbolic dims (one name per input axis) the run-time ones.
		t.Run(c.name, func(t *testing.T) { checkGradCase(t, c, uint64(i), false) })
		t.Run(c.name+"/symbolic", func(t *testing.T) { checkGradCase(t, c, uint64(i), true) })
	}
}

func checkGradCase(t *testing.T, c gradCase, seed uint64, symbolic bool) {
	rng := rand.New(rand.NewPCG(seed, 99))
	opset := c.opset
	if opset == 0 {
		opset = 17
	}
	m := &ir.Model{IRVersion: ir.IRVersionForOpset(opset), Opsets: []ir.Opset{{Version: opset}}, Graph: &ir.Graph{Name: c.name}}
	g := m.Graph
	node := &ir.Node{Name: "/op", OpType: c.op, Attrs: c.attrs}
	values := map[string][]float64{}
	var active []string
	for j, in := range c.inputs {
		name := fmt.Sprintf("x%d", j)
		node.Inputs = append(node.Inputs, name)
		switch {
		case in.active:
			dims := make([]ir.Dim, len(in.shape))
			n := int64(1)
			for k, d := range in.shape {
				dims[k] = ir.Dim{Value: d}
				if symbolic {
					dims[k] = ir.Sym(fmt.Sprintf("x%d_%d", j, k))
				}
				n *= d
			}
			g.Inputs = append(g.Inputs, &ir.ValueInfo{Name: name, Type: ir.TensorType(ir.Float64, dims...)})
			v := make([]float64, n)
			for k := range v {
				v[k] = in.lo + (in.hi-in.lo)*rng.Float64()
			}
			values[name] = v
			active = append(active, name)
		case in.ints != nil:
			g.Initializers = append(g.Initializers, ir.NewTensorI64(name, in.shape, in.ints))
		case in.bools != nil:
			raw := make([]byte, len(in.bools))
			for k, b := range in.bools {
				if b {
					raw[k] = 1
				}
			}
			g.Initializers = append(g.Initializers, &ir.Tensor{Name: name, DType: ir.Bool, Dims: in.shape, Raw: raw})
		default:
			g.Initializers = append(g.Initializers, ir.NewTensorF64(name, in.shape, in.f64))
		}
	}
	nOut := max(c.nOut, 1)
	for j := 0; j < nOut; j++ {
		o := fmt.Sprintf("y%d", j)
		node.Outputs = append(node.Outputs, o)
		g.Outputs = append(g.Outputs, &ir.ValueInfo{Name: o, Type: &ir.Type{DType: ir.Float64}})
	}
	g.Nodes = []*ir.Node{node}
	if c.nodes != nil {
		g.Nodes = nil
		for _, n := range c.nodes {
			cp := *n
			cp.Inputs, cp.Outputs = slices.Clone(n.Inputs), slices.Clone(n.Outputs)
			g.Nodes = append(g.Nodes, &cp)
		}
	}
	if c.expand {
		if err := ExpandFunctions(NewState(m, Options{})); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	fwdPath := filepath.Join(dir, "forward.onnx")
	for _, o := range g.Outputs { // outputs of unknown rank are fine for ORT
		o.Type = ir.TensorType(ir.Float64, ir.Sym("a"))
		o.Type.Shape = false
	}
	if err := ir.Save(m, fwdPath, ir.EmitOptions{}); err != nil {
		t.Fatal(err)
	}
	fwd, err := runtime.NewSession(fwdPath, &runtime.Options{Optimization: runtime.OptimizeNone})
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Destroy()
	feeds := func(vals map[string][]float64) map[string]*runtime.Tensor {
		f := map[string]*runtime.Tensor{}
		for j, in := range c.inputs {
			if in.active {
				name := fmt.Sprintf("x%d", j)
				f[name], _ = runtime.FromFloat64(in.shape, vals[name])
			}
		}
		return f
	}
	y0, err := fwd.Run(feeds(values))
	if err != nil {
		t.Fatal(err)
	}
	// Random cotangents, one per output element.
	dys := map[string]*runtime.Tensor{}
	for _, o := range node.Outputs {
		v := make([]float64, y0[o].Len())
		for k := range v {
			v[k] = rng.Float64()*2 - 1
		}
		dys[o], _ = runtime.FromFloat64(y0[o].Shape(), v)
	}
	loss := func(vals map[string][]float64) float64 {
		out, err := fwd.Run(feeds(vals))
		if err != nil {
			t.Fatal(err)
		}
		l := 0.0
		for _, o := range node.Outputs {
			for k, y := range out[o].Floats() {
				l += y * dys[o].Floats()[k]
			}
		}
		return l
	}

	// The gradient graph.
	s := NewState(m, Options{})
	seeds := map[string]string{}
	for _, o := range node.Outputs {
		dy := "d" + o
		g.Inputs = append(g.Inputs, &ir.ValueInfo{Name: dy, Type: ir.TensorType(ir.Float64, dimsOf(dys[o].Shape())...)})
		seeds[o] = dy
	}
	grads, err := differentiate(s, active, seeds)
	if err != nil {
		t.Fatal(err)
	}
	g.Outputs = nil
	for _, a := range active {
		out := "grad_" + a
		g.Nodes = append(g.Nodes, &ir.Node{Name: "/out/" + a, OpType: "Identity", Inputs: []string{grads[a]}, Outputs: []string{out}})
		g.Outputs = append(g.Outputs, &ir.ValueInfo{Name: out, Type: g.Input(a).Type.Clone()})
		grads[a] = out
	}
	if err := ir.TopoSort(g); err != nil {
		t.Fatal(err)
	}
	if err := ir.Check(g); err != nil {
		t.Fatal(err)
	}
	bwdPath := filepath.Join(dir, "backward.onnx")
	if err := ir.Save(m, bwdPath, ir.EmitOptions{}); err != nil {
		t.Fatal(err)
	}
	bwd, err := runtime.NewSession(bwdPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bwd.Destroy()
	in := feeds(values)
	for _, o := range node.Outputs {
		in["d"+o] = dys[o]
	}
	got, err := bwd.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	tol := c.tol
	if tol == 0 {
		tol = 1e-7
	}
	const h = 1e-6
	worst := 0.0
	for _, a := range active {
		ana := got[grads[a]].Floats()
		var j int
		fmt.Sscanf(a, "x%d", &j)
		if want := c.inputs[j].shape; !slices.Equal(got[grads[a]].Shape(), want) {
			t.Fatalf("gradient of %s has shape %v, the input %v", a, got[grads[a]].Shape(), want)
		}
		for k := range values[a] {
			orig := values[a][k]
			values[a][k] = orig + h
			lp := loss(values)
			values[a][k] = orig - h
			lm := loss(values)
			values[a][k] = orig
			num := (lp - lm) / (2 * h)
			rel := math.Abs(num-ana[k]) / math.Max(1, math.Max(math.Abs(num), math.Abs(ana[k])))
			worst = math.Max(worst, rel)
			if rel > tol {
				t.Errorf("d L / d %s[%d]: rule %.9g, central difference %.9g (rel %.2g > %.2g)", a, k, ana[k], num, rel, tol)
			}
		}
	}
	t.Logf("%s: worst relative error %.2g (tolerance %.0g)", c.name, worst, tol)
}

func dimsOf(shape []int64) []ir.Dim { return ir.Dims(shape...) }

// TestDropoutTrainingModeRefused: a Dropout in training mode (a random
// mask and rescale) has no gradient rule and is refused by name; with
// training_mode a false constant, or ratio 0, it is the identity.
func TestDropoutTrainingModeRefused(t *testing.T) {
	build := func(training bool, ratio float64) (*State, error) {
		m := &ir.Model{IRVersion: ir.IRVersionForOpset(17), Opsets: []ir.Opset{{Version: 17}}, Graph: &ir.Graph{Name: "dropout"}}
		g := m.Graph
		g.Inputs = []*ir.ValueInfo{{Name: "x", Type: ir.TensorType(ir.Float32, ir.Dim{Value: 2}, ir.Dim{Value: 3})}}
		tm := &ir.Tensor{Name: "training", DType: ir.Bool, Raw: []byte{0}}
		if training {
			tm.Raw[0] = 1
		}
		g.Initializers = []*ir.Tensor{ir.NewTensorF32("ratio", nil, []float32{float32(ratio)}), tm}
		g.Nodes = []*ir.Node{nd("Dropout", []string{"x", "ratio", "training"}, "y")}
		g.Nodes[0].Name = "/model/dropout"
		g.Outputs = []*ir.ValueInfo{{Name: "y", Type: ir.TensorType(ir.Float32, ir.Dim{Value: 2}, ir.Dim{Value: 3})}}
		g.Inputs = append(g.Inputs, &ir.ValueInfo{Name: "dy", Type: ir.TensorType(ir.Float32, ir.Dim{Value: 2}, ir.Dim{Value: 3})})
		s := NewState(m, Options{})
		_, err := differentiate(s, []string{"x"}, map[string]string{"y": "dy"})
		return s, err
	}
	if _, err := build(true, 0.1); err == nil || !strings.Contains(err.Error(), "training mode") || !strings.Contains(err.Error(), "/model/dropout") {
		t.Errorf("training-mode Dropout: %v", err)
	}
	for _, c := range []struct {
		training bool
		ratio    float64
	}{{false, 0.1}, {true, 0}} {
		if _, err := build(c.training, c.ratio); err != nil {
			t.Errorf("Dropout with training_mode %v, ratio %g: %v", c.training, c.ratio, err)
		}
	}
}
