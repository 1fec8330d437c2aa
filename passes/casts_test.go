package passes

import (
	"slices"
	"testing"

	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/ir/onnxpb"
)

// TestDropNoopCasts: a Cast to its input's own type goes and its readers
// read the input; a real conversion, a Cast of a value whose type is not
// known, one that is a graph output and one a Loop body reads stay.
func TestDropNoopCasts(t *testing.T) {
	f32 := ir.TensorType(ir.Float32, ir.Dims(2)...)
	g := &ir.Graph{
		Inputs:  []*ir.ValueInfo{{Name: "x", Type: f32}, {Name: "u"}},
		Outputs: []*ir.ValueInfo{{Name: "y", Type: f32}, {Name: "h", Type: ir.TensorType(ir.Float16, ir.Dims(2)...)}, {Name: "o", Type: f32}, {Name: "l", Type: f32}},
	}
	to := func(dt ir.DType) []*onnxpb.AttributeProto {
		return []*onnxpb.AttributeProto{ir.AttrInt("to", int64(dt))}
	}
	body := &ir.Graph{Name: "body", Nodes: []*ir.Node{{Name: "in_body", OpType: "Identity", Inputs: []string{"inner"}, Outputs: []string{"z"}}}}
	bodyAttr, err := ir.AttrGraph("body", body)
	if err != nil {
		t.Fatal(err)
	}
	g.Nodes = []*ir.Node{
		{Name: "noop", OpType: "Cast", Inputs: []string{"x"}, Outputs: []string{"c"}, Attrs: to(ir.Float32)},
		{Name: "noop2", OpType: "Cast", Inputs: []string{"c"}, Outputs: []string{"c2"}, Attrs: to(ir.Float32)},
		{Name: "use", OpType: "Neg", Inputs: []string{"c2"}, Outputs: []string{"y"}},
		{Name: "half", OpType: "Cast", Inputs: []string{"x"}, Outputs: []string{"h"}, Attrs: to(ir.Float16)},
		{Name: "unknown", OpType: "Cast", Inputs: []string{"u"}, Outputs: []string{"cu"}, Attrs: to(ir.Float32)},
		{Name: "use_unknown", OpType: "Neg", Inputs: []string{"cu"}, Outputs: []string{"l"}},
		{Name: "output", OpType: "Cast", Inputs: []string{"x"}, Outputs: []string{"o"}, Attrs: to(ir.Float32)},
		{Name: "inner_cast", OpType: "Cast", Inputs: []string{"x"}, Outputs: []string{"inner"}, Attrs: to(ir.Float32)},
		{Name: "loop", OpType: "Loop", Inputs: []string{"", ""}, Outputs: []string{"lo"}, Attrs: []*onnxpb.AttributeProto{bodyAttr}},
	}
	if err := DropNoopCasts(NewState(&ir.Model{Graph: g}, Options{})); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, n := range g.Nodes {
		names = append(names, n.Name)
	}
	want := []string{"use", "half", "unknown", "use_unknown", "output", "inner_cast", "loop"}
	if !slices.Equal(names, want) {
		t.Fatalf("nodes %v, want %v", names, want)
	}
	if in := g.Nodes[0].Inputs[0]; in != "x" {
		t.Fatalf("the Neg reads %q, want x (the chain of no-op Casts bypassed)", in)
	}
}
