package passes

import (
	"path/filepath"
	"testing"

	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/ir/onnxpb"
	"github.com/dartc/dartc/runtime"
)

// foldModel computes small integer values from the dims of x [batch, seq]
// and z [batch, 7] in ways fold-constants once got wrong, next to ones it
// must still fold:
//   - y1 = Equal(seq − 2, −1): seq − 2 is a computed value, not a size,
//     and is −1 at seq = 1 (it was decided false: "a size is never negative");
//   - y2 = int(float(7) / 2 · 2): float arithmetic (it was folded with
//     integer division: 6);
//   - y3 = Cast(Cast(−3, bool), int64): any non-zero value is true (it was
//     folded to false);
//   - y4 = Equal(seq, −1) (a size: false) and y5 = 7 · 2 + 1 (numbers):
//     these fold.
func foldModel() *ir.Model {
	m := &ir.Model{IRVersion: 8, Opsets: []ir.Opset{{Version: 17}}, Graph: &ir.Graph{Name: "fold"}}
	g := m.Graph
	g.Inputs = []*ir.ValueInfo{{Name: "x", Type: ir.TensorType(ir.Float32, ir.Sym("batch"), ir.Sym("seq"))},
		{Name: "z", Type: ir.TensorType(ir.Float32, ir.Sym("batch"), ir.Dim{Value: 7})}}
	g.Initializers = []*ir.Tensor{
		ir.NewTensorI64("one", []int64{1}, []int64{1}),
		ir.NewTensorI64("two", []int64{1}, []int64{2}),
		ir.NewTensorI64("minus1", []int64{1}, []int64{-1}),
		ir.NewTensorI64("minus3", []int64{1}, []int64{-3}),
	}
	n := func(op string, ins []string, out string, a ...*onnxpb.AttributeProto) *ir.Node {
		return &ir.Node{Name: out, OpType: op, Inputs: ins, Outputs: []string{out}, Attrs: a}
	}
	toI64 := ir.AttrInt("to", int64(ir.Int64))
	g.Nodes = []*ir.Node{
		n("Shape", []string{"x"}, "sh"),
		n("Gather", []string{"sh", "one"}, "seq"),
		n("Sub", []string{"seq", "two"}, "d"),
		n("Equal", []string{"d", "minus1"}, "eq"),
		n("Cast", []string{"eq"}, "v1", toI64),
		n("Shape", []string{"z"}, "shz"),
		n("Gather", []string{"shz", "one"}, "sz"),
		n("Cast", []string{"sz"}, "szf", ir.AttrInt("to", int64(ir.Float32))),
		n("Cast", []string{"two"}, "twof", ir.AttrInt("to", int64(ir.Float32))),
		n("Div", []string{"szf", "twof"}, "q"),
		n("Mul", []string{"q", "twof"}, "m"),
		n("Cast", []string{"m"}, "v2", toI64),
		n("Cast", []string{"minus3"}, "b", ir.AttrInt("to", int64(ir.Bool))),
		n("Cast", []string{"b"}, "v3", toI64),
		n("Equal", []string{"seq", "minus1"}, "eqs"),
		n("Cast", []string{"eqs"}, "v4", toI64),
		n("Mul", []string{"sz", "two"}, "sz2"),
		n("Add", []string{"sz2", "one"}, "v5"),
	}
	for _, y := range []string{"y1", "y2", "y3", "y4", "y5"} {
		// Graph outputs are never folded: each reads its value through an
		// Identity.
		g.Nodes = append(g.Nodes, n("Identity", []string{"v" + y[1:]}, y))
		g.Outputs = append(g.Outputs, &ir.ValueInfo{Name: y, Type: ir.TensorType(ir.Int64, ir.Dim{Value: 1})})
	}
	return m
}

// TestFoldConstantsKeepsValues runs the graph in ONNX Runtime before and
// after fold-constants and dead-code, at seq = 1 (where seq − 2 = −1) and
// seq = 5: every output must be the same, and the foldable ones must have
// been folded.
func TestFoldConstantsKeepsValues(t *testing.T) {
	orttest.Init(t)
	dir := t.TempDir()
	run := func(m *ir.Model, name string, seq int64) map[string]int64 {
		path := filepath.Join(dir, name)
		if err := ir.Save(m, path, ir.EmitOptions{}); err != nil {
			t.Fatal(err)
		}
		s, err := runtime.NewSession(path, &runtime.Options{Optimization: runtime.OptimizeNone})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Destroy()
		x, _ := runtime.FromFloat32([]int64{1, seq}, make([]float32, seq))
		z, _ := runtime.FromFloat32([]int64{1, 7}, make([]float32, 7))
		out, err := s.Run(map[string]*runtime.Tensor{"x": x, "z": z})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for k, v := range out {
			got[k] = v.Int64()[0]
		}
		return got
	}
	folded := foldModel()
	if err := FoldConstants(NewState(folded, Options{})); err != nil {
		t.Fatal(err)
	}
	if err := DeadCode(NewState(folded, Options{})); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []int64{1, 5} {
		want, got := run(foldModel(), "before.onnx", seq), run(folded, "after.onnx", seq)
		for _, y := range []string{"y1", "y2", "y3", "y4", "y5"} {
			if got[y] != want[y] {
				t.Errorf("seq %d: %s = %d after fold-constants, %d before", seq, y, got[y], want[y])
			}
		}
	}
	computed := map[string]bool{}
	for _, n := range folded.Graph.Nodes {
		computed[n.Outputs[0]] = true
	}
	for _, v := range []string{"v3", "v4", "v5"} {
		if computed[v] {
			t.Errorf("%s is still computed: not folded", v)
		}
	}
	for _, v := range []string{"eq", "v2"} {
		if !computed[v] {
			t.Errorf("%s was folded, but it depends on the input's length or on float arithmetic", v)
		}
	}
}
