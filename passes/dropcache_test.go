package passes

import (
	"testing"

	"github.com/dartc/dartc/ir"
)

// TestDropCacheSkipsEmptyConcats: once the cache is emptied, the
// exporter's Concat(past, k) along the length axis is k itself: readers
// read k, and the Concat goes; a Concat on another axis stays.
func TestDropCacheSkipsEmptyConcats(t *testing.T) {
	b, s := ir.Dim{Param: "batch_size"}, ir.Dim{Param: "sequence_length"}
	kv := func(name string, length ir.Dim) *ir.ValueInfo {
		return &ir.ValueInfo{Name: name, Type: ir.TensorType(ir.Float32, b, ir.Dim{Value: 2}, length, ir.Dim{Value: 4})}
	}
	g := &ir.Graph{Inputs: []*ir.ValueInfo{
		{Name: "input_ids", Type: ir.TensorType(ir.Int64, b, s)},
		kv("past_key_values.0.key", ir.Dim{Param: "past"}),
		kv("k", s),
	}}
	m := &ir.Model{Graph: g}
	m.SetOpset("", 17)
	st := NewState(m, Options{})
	bd := st.Builder()
	present := bd.Op("/Concat", "Concat", []string{"past_key_values.0.key", "k"}, ir.AttrInt("axis", -2))
	other := bd.Op("/Concat_heads", "Concat", []string{"past_key_values.0.key", "k"}, ir.AttrInt("axis", 1))
	y := bd.Op("/Relu", "Relu", []string{present})
	g.Outputs = []*ir.ValueInfo{{Name: y}, {Name: other}}
	if err := DropCache(st); err != nil {
		t.Fatal(err)
	}
	concats := 0
	for _, n := range g.Nodes {
		switch {
		case n.OpType == "Relu" && n.Inputs[0] != "k":
			t.Fatalf("Relu reads %s, want k", n.Inputs[0])
		case n.OpType == "Concat" && n.Inputs[0] == "past_key_values.0.key":
			if n.AttrInt("axis", 0) != 1 {
				t.Fatalf("%s still concatenates the empty cache on axis %d", n.Name, n.AttrInt("axis", 0))
			}
			concats++
		}
	}
	if concats != 1 {
		t.Fatalf("%d Concats read the emptied cache, want 1 (the one on the heads axis)", concats)
	}
}
