package passes

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/ir/onnxpb"
	"github.com/dartc/dartc/runtime"
)

// expandCase is one opset-23 function op with float32 inputs; the test runs
// ORT's own kernel and the expansion on the same inputs.
type expandCase struct {
	name   string
	op     string
	opset  int64
	inputs []expandInput
	attrs  []*onnxpb.AttributeProto
	nOut   int
}

type expandInput struct {
	name  string
	shape []int64
	dt    ir.DType
	fill  func(i int) float64 // nil: random in [−1.5, 1.5]
}

func f32in(name string, shape ...int64) expandInput {
	return expandInput{name: name, shape: shape, dt: ir.Float32}
}

var expandCases = []expandCase{
	{name: "RMSNormalization", op: "RMSNormalization", opset: 23, nOut: 1,
		inputs: []expandInput{f32in("x", 2, 3, 8), f32in("scale", 8)}, attrs: attrs(ir.AttrFloat("epsilon", 1e-6))},
	{name: "RotaryEmbedding/3D", op: "RotaryEmbedding", opset: 23, nOut: 1,
		inputs: []expandInput{f32in("x", 2, 3, 16), f32in("cos", 2, 3, 2), f32in("sin", 2, 3, 2)},
		attrs:  attrs(ir.AttrInt("num_heads", 4))},
	{name: "RotaryEmbedding/4D+position_ids+partial", op: "RotaryEmbedding", opset: 23, nOut: 1,
		inputs: []expandInput{f32in("x", 2, 2, 3, 8), f32in("cos", 10, 3), f32in("sin", 10, 3),
			{name: "pos", shape: []int64{2, 3}, dt: ir.Int64, fill: func(i int) float64 { return float64((i * 7) % 10) }}},
		attrs: attrs(ir.AttrInt("rotary_embedding_dim", 6))},
	{name: "Attention/3D-GQA-bool-mask", op: "Attention", opset: 23, nOut: 1,
		inputs: []expandInput{f32in("q", 2, 3, 16), f32in("k", 2, 3, 8), f32in("v", 2, 3, 8),
			{name: "mask", shape: []int64{2, 1, 3, 3}, dt: ir.Bool, fill: func(i int) float64 { return float64(1 - (i%3)/2*(i%2)) }}},
		attrs: attrs(ir.AttrInt("q_num_heads", 4), ir.AttrInt("kv_num_heads", 2), ir.AttrFloat("scale", 0.3))},
	{name: "Attention/4D-causal-float-mask", op: "Attention", opset: 23, nOut: 3,
		inputs: []expandInput{f32in("q", 1, 2, 4, 4), f32in("k", 1, 2, 4, 4), f32in("v", 1, 2, 4, 4), f32in("mask", 4, 4)},
		attrs:  attrs(ir.AttrInt("is_causal", 1))},
	{name: "Attention/3D-nonpad", op: "Attention", opset: 24, nOut: 1,
		inputs: []expandInput{f32in("q", 2, 3, 8), f32in("k", 2, 5, 8), f32in("v", 2, 5, 8), {}, {}, {},
			{name: "nonpad", shape: []int64{2}, dt: ir.Int64, fill: func(i int) float64 { return float64(3 + 2*i) }}},
		attrs: attrs(ir.AttrInt("q_num_heads", 2), ir.AttrInt("kv_num_heads", 2))},
}

func buildExpandCase(c expandCase, dt ir.DType, rng *rand.Rand) (*ir.Model, map[string]*runtime.Tensor) {
	m := &ir.Model{IRVersion: ir.IRVersionForOpset(c.opset), Opsets: []ir.Opset{{Version: c.opset}}, Graph: &ir.Graph{Name: c.name}}
	node := &ir.Node{Name: "/" + c.op, OpType: c.op, Attrs: c.attrs}
	feeds := map[string]*runtime.Tensor{}
	for _, in := range c.inputs {
		node.Inputs = append(node.Inputs, in.name)
		if in.name == "" {
			continue
		}
		t := in.dt
		if t == ir.Float32 {
			t = dt
		}
		m.Graph.Inputs = append(m.Graph.Inputs, &ir.ValueInfo{Name: in.name, Type: ir.TensorType(t, ir.Dims(in.shape...)...)})
		n := 1
		for _, d := range in.shape {
			n *= int(d)
		}
		vals := make([]float64, n)
		for i := range vals {
			if in.fill != nil {
				vals[i] = in.fill(i)
			} else {
				vals[i] = 3*rng.Float64() - 1.5
			}
		}
		switch t {
		case ir.Float32:
			f := make([]float32, n)
			for i, v := range vals {
				f[i] = float32(v)
			}
			feeds[in.name], _ = runtime.FromFloat32(in.shape, f)
		case ir.Float64:
			feeds[in.name], _ = runtime.FromFloat64(in.shape, vals)
		case ir.Int64:
			v := make([]int64, n)
			for i, x := range vals {
				v[i] = int64(x)
			}
			feeds[in.name], _ = runtime.FromInt64(in.shape, v)
		case ir.Bool:
			v := make([]bool, n)
			for i, x := range vals {
				v[i] = x != 0
			}
			feeds[in.name], _ = runtime.FromBool(in.shape, v)
		}
	}
	for i := 0; i < c.nOut; i++ {
		o := fmt.Sprintf("y%d", i)
		node.Outputs = append(node.Outputs, o)
		dims := make([]ir.Dim, len(c.inputs[0].shape)) // every output has the first input's rank
		for k := range dims {
			dims[k] = ir.Sym(fmt.Sprintf("%s_%d", o, k))
		}
		m.Graph.Outputs = append(m.Graph.Outputs, &ir.ValueInfo{Name: o, Type: ir.TensorType(dt, dims...)})
	}
	m.Graph.Nodes = []*ir.Node{node}
	return m, feeds
}

func runModel(t *testing.T, m *ir.Model, feeds map[string]*runtime.Tensor) map[string]*runtime.Tensor {
	t.Helper()
	path := filepath.Join(t.TempDir(), "m.onnx")
	if err := ir.Save(m, path, ir.EmitOptions{}); err != nil {
		t.Fatal(err)
	}
	s, err := runtime.NewSession(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	out, err := s.Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestExpandedFunctionsMatchORT: each expansion computes what ORT's own
// kernel for the op computes.
func TestExpandedFunctionsMatchORT(t *testing.T) {
	orttest.Init(t)
	for i, c := range expandCases {
		t.Run(c.name, func(t *testing.T) {
			m, feeds := buildExpandCase(c, ir.Float32, rand.New(rand.NewPCG(uint64(i), 5)))
			want := runModel(t, m, feeds)
			m2, _ := buildExpandCase(c, ir.Float32, rand.New(rand.NewPCG(uint64(i), 5)))
			if err := ExpandFunctions(NewState(m2, Options{})); err != nil {
				t.Fatal(err)
			}
			if err := ir.Check(m2.Graph); err != nil {
				t.Fatal(err)
			}
			for _, n := range m2.Graph.Nodes {
				if n.OpType == c.op {
					t.Fatalf("%s was not expanded", c.op)
				}
			}
			got := runModel(t, m2, feeds)
			for name, w := range want {
				g := got[name]
				if fmt.Sprint(g.Shape()) != fmt.Sprint(w.Shape()) {
					t.Fatalf("%s: shape %v, ORT's op gives %v", name, g.Shape(), w.Shape())
				}
				worst := 0.0
				for k, v := range w.Floats() {
					worst = math.Max(worst, math.Abs(v-g.Floats()[k]))
				}
				t.Logf("%s: max |expanded − ORT| = %.2g", name, worst)
				if worst > 2e-6 {
					t.Fatalf("%s: expansion differs from ORT's kernel by %.3g", name, worst)
				}
			}
		})
	}
}

func TestExpandRefusals(t *testing.T) {
	c := expandCases[2]
	c.attrs = append(append([]*onnxpb.AttributeProto{}, c.attrs...), ir.AttrInt("interleaved", 1))
	m, _ := buildExpandCase(c, ir.Float32, rand.New(rand.NewPCG(1, 1)))
	if err := ExpandFunctions(NewState(m, Options{})); err == nil {
		t.Fatal("an interleaved rotation was expanded")
	}
	a := expandCases[3]
	a.inputs = append(append([]expandInput{}, a.inputs...), f32in("past_k", 2, 2, 1, 4))
	m, _ = buildExpandCase(a, ir.Float32, rand.New(rand.NewPCG(1, 1)))
	if err := ExpandFunctions(NewState(m, Options{})); err == nil {
		t.Fatal("an attention with a past cache was expanded")
	}
}
