package passes

import (
	"testing"

	"github.com/dartc/dartc/ir"
)

// TestShapesMergeBySymbolicShape: Shape nodes of different values with
// the same symbolic shape become one, and so do the sub-graphs computed
// from them; a value whose shape differs in one dim keeps its own Shape.
func TestShapesMergeBySymbolicShape(t *testing.T) {
	n, four := ir.Dim{Param: "n"}, ir.Dim{Value: 4}
	g := &ir.Graph{Inputs: []*ir.ValueInfo{
		{Name: "x", Type: ir.TensorType(ir.Float32, n, four)},
		{Name: "y", Type: ir.TensorType(ir.Float32, n, four)},
		{Name: "z", Type: ir.TensorType(ir.Float32, ir.Dim{Param: "m"}, four)},
		{Name: "d", Type: ir.TensorType(ir.Float32, ir.Dim{Param: "k"})},
	}}
	m := &ir.Model{Graph: g}
	m.SetOpset("", 17)
	s := NewState(m, Options{})
	b := s.Builder()
	var outs []string
	for _, v := range []string{"x", "y", "z"} {
		shape := b.Op(v+"/Shape", "Shape", []string{v})
		rows := b.Op(v+"/rows", "Gather", []string{shape, b.Ints(v+"/zero", 0)})
		outs = append(outs, b.Op(v+"/Reshape", "Reshape", []string{"d", shape}), rows)
	}
	for _, v := range outs {
		g.Outputs = append(g.Outputs, &ir.ValueInfo{Name: v})
	}
	if err := EliminateCommonSubexpressions(s); err != nil {
		t.Fatal(err)
	}
	shapeOf := map[string]string{}
	count := map[string]int{}
	for _, nd := range g.Nodes {
		count[nd.OpType]++
		if nd.OpType == "Reshape" {
			shapeOf[nd.Outputs[0]] = nd.Inputs[1]
		}
	}
	if count["Shape"] != 2 {
		t.Fatalf("%d Shape nodes, want 2 (x and y share one, z has its own)", count["Shape"])
	}
	if shapeOf[outs[0]] != shapeOf[outs[2]] || shapeOf[outs[0]] == shapeOf[outs[4]] {
		t.Fatalf("reshapes read %q, %q, %q: want x's and y's the same, z's another", shapeOf[outs[0]], shapeOf[outs[2]], shapeOf[outs[4]])
	}
	// Gathers that write graph outputs are kept, but they read one shape.
	if count["Gather"] != 3 {
		t.Fatalf("%d Gathers, want 3 (each writes a graph output)", count["Gather"])
	}
}
