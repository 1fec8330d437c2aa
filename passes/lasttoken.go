package passes

import (
	"fmt"
	"math"

	"github.com/dartc/dartc/compiler/ir"
)

// LogitsOutput is the name of the logits output of decoder exports.
const LogitsOutput = "logits"

// LastTokenLogits makes the graph compute logits for the last position
// only: it slices the hidden states to [batch, 1, hidden] before the lm_head
// so that the largest matmul of the model (hidden × vocab) runs on one
// position. When the head is not a plain MatMul on [batch, seq, hidden]
// activations, it slices the logits instead, which is correct but does not
// save the head's work.
func LastTokenLogits(s *State) error {
	g := s.Model.Graph
	out := g.Output(LogitsOutput)
	if out == nil {
		return fmt.Errorf("passes: the graph has no %q output", LogitsOutput)
	}
	if out.Type == nil || len(out.Type.Dims) != 3 {
		return fmt.Errorf("passes: the %q output is %v, want [batch, seq, vocab]", LogitsOutput, out.Type)
	}
	b := s.Builder()
	prod := producers(g)
	// Walk back through element-wise casts to the head.
	v := LogitsOutput
	n := prod[v]
	for n != nil && (n.OpType == "Cast" || n.OpType == "Identity") {
		v = n.Inputs[0]
		n = prod[v]
	}
	slice := func(name, x string) string {
		return b.Op(name, "Slice", []string{x,
			b.Ints(name+"/starts", -1), b.Ints(name+"/ends", math.MaxInt64), b.Ints(name+"/axes", 1)})
	}
	if n != nil && n.OpType == "MatMul" && n.Domain == "" && isWeight(g, prod, n.Inputs[1]) {
		n.Inputs[0] = slice("/lm_head/last_position/Slice", n.Inputs[0])
	} else {
		// Rename the producer's output and slice it into the logits name.
		src := prod[LogitsOutput]
		if src == nil {
			return fmt.Errorf("passes: %q is not produced by any node", LogitsOutput)
		}
		full := b.Unique(LogitsOutput + "/all_positions")
		for i, o := range src.Outputs {
			if o == LogitsOutput {
				src.Outputs[i] = full
			}
		}
		b.Add(&ir.Node{Name: "/lm_head/last_position/Slice", OpType: "Slice", Outputs: []string{LogitsOutput},
			Inputs: []string{full, b.Ints("/lm_head/last_position/starts", -1),
				b.Ints("/lm_head/last_position/ends", math.MaxInt64), b.Ints("/lm_head/last_position/axes", 1)}})
	}
	out.Type.Dims[1] = ir.Dim{Value: 1}
	out.Doc = "logits of the last position only"
	return ir.TopoSort(g)
}

// isWeight reports whether v is an initializer, or a Transpose or Cast of
// one.
func isWeight(g *ir.Graph, prod map[string]*ir.Node, v string) bool {
	for i := 0; i < 3; i++ {
		if g.Initializer(v) != nil {
			return true
		}
		p := prod[v]
		if p == nil || (p.OpType != "Transpose" && p.OpType != "Cast") {
			return false
		}
		v = p.Inputs[0]
	}
	return false
}
