package passes

import (
	"fmt"
	"testing"

	"github.com/dartc/dartc/ir"
)

// TestShapeInference checks the token rules on a small graph written by
// hand: what is inferred must be exact, and what cannot be must stay
// unknown (a wrong claim would drop a needed broadcast reduction).
func TestShapeInference(t *testing.T) {
	seq := []ir.Dim{ir.Sym("b"), ir.Sym("s")}
	g := &ir.Graph{
		Inputs: []*ir.ValueInfo{
			{Name: "x", Type: ir.TensorType(ir.Float32, seq[0], seq[1], ir.Dim{Value: 64})},
			{Name: "ids", Type: ir.TensorType(ir.Int64, seq...)},
			{Name: "y", Type: ir.TensorType(ir.Float32, ir.Sym("n"))},
		},
		Initializers: []*ir.Tensor{
			ir.NewTensorI64("heads", []int64{4}, []int64{0, 0, -1, 16}),
			ir.NewTensorI64("s1", []int64{1}, []int64{8}),
			ir.NewTensorI64("e1", []int64{1}, []int64{1000}),
			ir.NewTensorI64("ax", []int64{1}, []int64{-1}),
			ir.NewTensorI64("one", []int64{1}, []int64{1}),
			ir.NewTensorI64("flat", []int64{1}, []int64{-1}),
			ir.NewTensorF32("empty", []int64{0, 4}, nil),
		},
		Nodes: []*ir.Node{
			{OpType: "Reshape", Inputs: []string{"x", "heads"}, Outputs: []string{"r"}},         // [b, s, 4, 16]
			{OpType: "Slice", Inputs: []string{"r", "s1", "e1", "ax"}, Outputs: []string{"sl"}}, // [b, s, 4, 8]
			{OpType: "Shape", Inputs: []string{"ids"}, Outputs: []string{"sh"}},                 // vals [b, s]
			{OpType: "Gather", Inputs: []string{"sh", "one"}, Outputs: []string{"len"}},         // vals [s]
			{OpType: "Sub", Inputs: []string{"len", "len"}, Outputs: []string{"zero"}},          // vals [0]
			{OpType: "Reshape", Inputs: []string{"y", "flat"}, Outputs: []string{"yf"}},         // [n]
			{OpType: "Reshape", Inputs: []string{"x", "flat"}, Outputs: []string{"xf"}},         // unknown
			{OpType: "Concat", Inputs: []string{"empty", "sq"}, Outputs: []string{"cat"}, Attrs: []*onnxAttr{ir.AttrInt("axis", 0)}},
			{OpType: "Squeeze", Inputs: []string{"sl"}, Outputs: []string{"sq0"}}, // unknown: b, s may be 1
			{OpType: "Add", Inputs: []string{"x", "y"}, Outputs: []string{"bc"}},  // [b, s, ?]
			{OpType: "Constant", Outputs: []string{"two"}, Attrs: []*onnxAttr{ir.AttrInts("value_ints", 1, 2)}},
			{OpType: "Reshape", Inputs: []string{"len", "flat"}, Outputs: []string{"len1"}}, // vals [s]
			{OpType: "Concat", Inputs: []string{"two", "len1"}, Outputs: []string{"target"}, Attrs: []*onnxAttr{ir.AttrInt("axis", 0)}},
			{OpType: "Expand", Inputs: []string{"one_f", "target"}, Outputs: []string{"ex"}},                                  // [1, 2, s]
			{OpType: "GatherND", Inputs: []string{"x", "nd"}, Outputs: []string{"gnd"}},                                       // [4, 64]
			{OpType: "Flatten", Inputs: []string{"r"}, Outputs: []string{"fl-1"}, Attrs: []*onnxAttr{ir.AttrInt("axis", -1)}}, // [b·s·4, 16]
			{OpType: "Flatten", Inputs: []string{"r"}, Outputs: []string{"fl4"}, Attrs: []*onnxAttr{ir.AttrInt("axis", 4)}},   // [b·s·64, 1]
			{OpType: "Flatten", Inputs: []string{"r"}, Outputs: []string{"fl-4"}, Attrs: []*onnxAttr{ir.AttrInt("axis", -4)}}, // [1, b·s·64]
		},
	}
	g.Initializers = append(g.Initializers, ir.NewTensorF32("one_f", []int64{1}, []float32{1}),
		ir.NewTensorI64("nd", []int64{4, 2}, []int64{0, 0, 0, 1, 1, 0, 1, 1}))
	// "sq" is [s, 4]: a value whose first dim is symbolic.
	g.Inputs = append(g.Inputs, &ir.ValueInfo{Name: "sq", Type: ir.TensorType(ir.Float32, ir.Sym("s"), ir.Dim{Value: 4})})
	si := inferShapes(g)
	for v, want := range map[string]string{
		"r": "[b s 4 16]", "sl": "[b s 4 8]", "yf": "[n]", "cat": "[s 4]", "ex": "[1 2 s]", "gnd": "[4 64]",
		"fl-1": "[4*b*s 16]", "fl4": "[64*b*s 1]", "fl-4": "[1 64*b*s]",
	} {
		if got := fmt.Sprint(si.dims[v]); got != want {
			t.Errorf("%s: %s, want %s", v, got, want)
		}
	}
	if got := fmt.Sprint(si.vals["zero"]); got != "[0]" {
		t.Errorf("s − s = %s, want [0]", got)
	}
	if d := si.dims["xf"]; len(d) != 1 || d[0] != "64*b*s" {
		t.Errorf("reshape of [b s 64] to [-1] = %v, want the product 64*b*s", d)
	}
	// The same product reached two ways gets the same token: flattening
	// [b, s, 64] to [-1, 64] and [s, b] to [-1, 1].
	if product(1, []string{"s", "b"}) != product(1, []string{"b*s"}) || product(64, []string{"s*b"}) != "64*b*s" {
		t.Errorf("product tokens are not canonical: %s, %s", product(1, []string{"s", "b"}), product(64, []string{"s*b"}))
	}
	if got := si.quotient([]string{"b", "s", "64"}, []string{"", "64"}, 0); got != "b*s" {
		t.Errorf("[b s 64] to [-1, 64]: first dim %s, want b*s", got)
	}
	if got := si.quotient([]string{"b*s", "4"}, []string{"b", "", "2"}, 1); got != "2*s" {
		t.Errorf("[b*s 4] to [b, -1, 2]: middle dim %s, want 2*s", got)
	}
	if got := si.quotient([]string{"b", "s"}, []string{"", "t"}, 0); got[0] != '?' {
		t.Errorf("[b s] to [-1, t]: %s, want unknown", got)
	}
	if _, ok := si.dims["sq0"]; ok {
		t.Errorf("squeezing symbolic dims was inferred: %v", si.dims["sq0"])
	}
	if d := si.dims["bc"]; len(d) != 3 || d[2][0] != '?' {
		t.Errorf("64 broadcast with n = %v, want an unknown last dim", d)
	}
	if si.sameShape("x", "bc") || !si.sameShape("r", "r") {
		t.Error("sameShape claims too much or too little")
	}
}
