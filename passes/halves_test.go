package passes

import (
	"math"
	"testing"

	"github.com/dartc/dartc/ir"
)

// TestSlicesToSplit: two Slices that cut a dim into consecutive pieces
// become one Split whose outputs are the Slices' (in order of position,
// whatever the node order); Slices that leave a gap, step by 2 or cut a dim
// of unknown size stay.
func TestSlicesToSplit(t *testing.T) {
	g := &ir.Graph{Inputs: []*ir.ValueInfo{
		{Name: "x", Type: ir.TensorType(ir.Float32, ir.Dims(2, 8)...)},
		{Name: "y", Type: ir.TensorType(ir.Float32, ir.Dim{Param: "n"}, ir.Dim{Param: "d"})},
	}}
	m := &ir.Model{Graph: g}
	m.SetOpset("", 17)
	s := NewState(m, Options{})
	b := s.Builder()
	slice := func(name, x string, start, end, axis int64, step ...int64) string {
		in := []string{x, b.Ints(name+"/s", start), b.Ints(name+"/e", end), b.Ints(name+"/a", axis)}
		if len(step) > 0 {
			in = append(in, b.Ints(name+"/st", step...))
		}
		return b.Op(name, "Slice", in)
	}
	second := slice("second", "x", 4, math.MaxInt64, -1) // before the first: the Split orders by position
	first := slice("first", "x", 0, 4, 1)
	gapA, gapB := slice("gapA", "x", 0, 3, 1), slice("gapB", "x", 5, 8, 1)
	stepA, stepB := slice("stepA", "x", 0, 4, 1, 2), slice("stepB", "x", 4, 8, 1, 2)
	unkA, unkB := slice("unkA", "y", 0, 4, 1), slice("unkB", "y", 4, math.MaxInt64, 1)
	for _, v := range []string{second, first, gapA, gapB, stepA, stepB, unkA, unkB} {
		g.Outputs = append(g.Outputs, &ir.ValueInfo{Name: v})
	}
	if err := SlicesToSplit(s); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, n := range g.Nodes {
		count[n.OpType]++
		if n.OpType == "Split" {
			if n.Inputs[0] != "x" || len(n.Outputs) != 2 || n.Outputs[0] != first || n.Outputs[1] != second || n.AttrInt("axis", -9) != 1 {
				t.Fatalf("split %v → %v (axis %d), want x → [%s %s] on axis 1", n.Inputs, n.Outputs, n.AttrInt("axis", -9), first, second)
			}
			sizes, ok := inferShapes(g).constInts(n.Inputs[1])
			if !ok || len(sizes) != 2 || sizes[0] != 4 || sizes[1] != 4 {
				t.Fatalf("split sizes %v, want [4 4]", sizes)
			}
		}
	}
	if count["Split"] != 1 || count["Slice"] != 6 {
		t.Fatalf("%d Splits and %d Slices, want 1 and 6 (gap, step and unknown size kept)", count["Split"], count["Slice"])
	}
}
