package passes

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/runtime"
)

// rotaryGraph is q·cos + rotate_half(q)·sin with rotate_half as the
// exporters write it once slices-to-split has run, plus a second
// rotate_half whose result is a graph output (the sign cannot move).
func rotaryGraph() (*ir.Model, *State) {
	b, h, s, d := ir.Dim{Param: "b"}, ir.Dim{Value: 3}, ir.Dim{Param: "s"}, ir.Dim{Value: 8}
	g := &ir.Graph{Inputs: []*ir.ValueInfo{
		{Name: "q", Type: ir.TensorType(ir.Float32, b, h, s, d)},
		{Name: "cos", Type: ir.TensorType(ir.Float32, b, ir.Dim{Value: 1}, s, d)},
		{Name: "sin", Type: ir.TensorType(ir.Float32, b, ir.Dim{Value: 1}, s, d)},
	}}
	m := &ir.Model{Graph: g}
	m.SetOpset("", 17)
	st := NewState(m, Options{})
	bd := st.Builder()
	rotate := func(tag, x string) string {
		halves := bd.OpN(tag+"/Split", "Split", []string{x, bd.Ints(tag+"/sizes", 4, 4)}, 2, ir.AttrInt("axis", -1))
		return bd.Op(tag+"/Concat", "Concat", []string{bd.Op(tag+"/Neg", "Neg", []string{halves[1]}), halves[0]}, ir.AttrInt("axis", -1))
	}
	rot := bd.Op("/rot", "Add", []string{bd.Op("/qcos", "Mul", []string{"q", "cos"}), bd.Op("/rsin", "Mul", []string{"sin", rotate("/rh", "q")})})
	g.Outputs = []*ir.ValueInfo{{Name: rot, Type: ir.TensorType(ir.Float32, b, h, s, d)},
		{Name: rotate("/out", "q"), Type: ir.TensorType(ir.Float32, b, h, s, d)}}
	return m, st
}

// TestRotateHalfAsSwap: rotate_half becomes one reversed Slice of q's
// halves, the Split, Neg and Concat go, the sign moves onto sin where the
// result only feeds a Mul and stays a Mul of its own where it is a graph
// output; both graphs compute the same values in ONNX Runtime.
func TestRotateHalfAsSwap(t *testing.T) {
	orttest.Init(t)
	rng := rand.New(rand.NewPCG(3, 4))
	feeds := map[string]*runtime.Tensor{}
	for name, shape := range map[string][]int64{"q": {2, 3, 5, 8}, "cos": {2, 1, 5, 8}, "sin": {2, 1, 5, 8}} {
		v := make([]float32, 2*shape[1]*shape[2]*shape[3])
		for i := range v {
			v[i] = float32(rng.NormFloat64())
		}
		tn, err := runtime.FromFloat32(shape, v)
		if err != nil {
			t.Fatal(err)
		}
		feeds[name] = tn
	}
	before, _ := rotaryGraph()
	want := runModel(t, before, feeds)
	m, st := rotaryGraph()
	if err := RotateHalfAsSwap(st); err != nil {
		t.Fatal(err)
	}
	if err := DeadCode(st); err != nil {
		t.Fatal(err)
	}
	if err := ir.Check(m.Graph); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, n := range m.Graph.Nodes {
		count[n.OpType]++
		if n.OpType == "Slice" {
			if steps, ok := inferShapes(m.Graph).constInts(n.Inputs[4]); !ok || len(steps) != 1 || steps[0] != -1 {
				t.Fatalf("slice %s: steps %v, want [-1]", n.Name, steps)
			}
		}
	}
	if count["Split"] != 0 || count["Neg"] != 0 || count["Concat"] != 0 || count["Slice"] != 2 {
		t.Fatalf("ops %v: want no Split, Neg or Concat and 2 Slices", count)
	}
	if d, ok := inferShapes(m.Graph).dims[m.Graph.Outputs[1].Name]; !ok || len(d) != 4 || d[0] != "b" || d[2] != "s" || d[3] != "8" {
		t.Fatalf("swapped output's inferred shape %v, want [b 3 s 8]", d)
	}
	got := runModel(t, m, feeds)
	for name, w := range want {
		worst := 0.0
		for i, v := range w.Floats() {
			worst = math.Max(worst, math.Abs(v-got[name].Floats()[i]))
		}
		if worst > 1e-6 {
			t.Fatalf("%s: rewritten graph differs by %.3g", name, worst)
		}
	}
}
