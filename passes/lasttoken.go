package passes

import (
	"fmt"
	"math"

	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/passes/names"
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

// GreedyOutputs adds the argmax of the last position's logits and its
// log-probability (max − log-sum-exp) as outputs, so that greedy
// decoding needs no pass over the vocabulary in Go: the runtime then skips
// fetching the logits altogether.
func GreedyOutputs(s *State) error {
	g := s.Model.Graph
	out := g.Output(LogitsOutput)
	if out == nil || out.Type == nil || len(out.Type.Dims) != 3 || out.Type.Dims[1].Value != 1 {
		return fmt.Errorf("passes: greedy outputs need the last-position logits [batch, 1, vocab] (run last-token-logits first)")
	}
	b := s.Builder()
	p := "/lm_head/greedy"
	l := LogitsOutput
	if out.Type.DType != ir.Float32 {
		l = b.Op(p+"/Cast", "Cast", []string{l}, ir.AttrInt("to", int64(ir.Float32)))
	}
	flat := b.Op(p+"/flat", "Squeeze", []string{l, b.Ints(p+"/seq", 1)}) // [batch, vocab]
	// Reductions over the vocabulary; axes became an input in opset 18.
	reduce := func(op string) string {
		if s.Model.OpsetVersion("") >= 18 {
			return b.Op(p+"/"+op, op, []string{flat, b.Ints(p+"/"+op+"/axes", -1)}, ir.AttrInt("keepdims", 0))
		}
		return b.Op(p+"/"+op, op, []string{flat}, ir.AttrInts("axes", -1), ir.AttrInt("keepdims", 0))
	}
	max := reduce("ReduceMax")
	lse, err := blockLogSumExp(b, p+"/lse", flat, max, out.Type.Dims[2])
	if err != nil {
		return err
	}
	arg := b.Op(p+"/ArgMax", "ArgMax", []string{flat}, ir.AttrInt("axis", -1), ir.AttrInt("keepdims", 0))
	b.Add(&ir.Node{Name: p + "/next_token", OpType: "Identity", Inputs: []string{arg}, Outputs: []string{names.NextToken}})
	b.Add(&ir.Node{Name: p + "/next_logprob", OpType: "Sub", Inputs: []string{max, lse}, Outputs: []string{names.NextLogprob}})
	batch := out.Type.Dims[0]
	g.Outputs = append(g.Outputs,
		&ir.ValueInfo{Name: names.NextToken, Type: ir.TensorType(ir.Int64, batch), Doc: "argmax of the last position's logits (lowest id on ties)"},
		&ir.ValueInfo{Name: names.NextLogprob, Type: ir.TensorType(ir.Float32, batch), Doc: "log-softmax of the last logits at next_token"})
	return ir.TopoSort(g)
}

// blockLogSumExp returns log Σ exp(x) over the last axis of the float32
// [batch, vocab] value x whose row maxima are max [batch]: the exponentials
// are float32, summed in float32 over blocks of about √vocab ids and the
// block sums in float64, so the result is accurate to about 1e-7 relative
// (ReduceLogSumExp sums the whole row in float32, which loses about 1e-5
// over a 152k vocabulary).
func blockLogSumExp(b *ir.Builder, p, x, max string, vocab ir.Dim) (string, error) {
	if !vocab.Known() {
		return "", fmt.Errorf("passes: the log-sum-exp needs a known vocabulary size, got %v", vocab)
	}
	bs, nb := blocking(vocab.Value)
	e := b.Op(p+"/Exp", "Exp", []string{b.Op(p+"/Sub", "Sub", []string{x, b.Op(p+"/max", "Unsqueeze", []string{max, b.Ints(p+"/max/axes", -1)})})})
	if bs*nb != vocab.Value {
		e = b.Op(p+"/Pad", "Pad", []string{e, b.Ints(p+"/pads", 0, 0, 0, bs*nb-vocab.Value)})
	}
	blocks := b.Op(p+"/blocks", "Reshape", []string{e, b.Ints(p+"/blocks/shape", 0, nb, bs)})
	bsum := b.Op(p+"/block_sum", "ReduceSum", []string{blocks, b.Ints(p+"/block_sum/axes", -1)}, ir.AttrInt("keepdims", 0))
	b64 := b.Op(p+"/block_sum64", "Cast", []string{bsum}, ir.AttrInt("to", int64(ir.Float64)))
	sum := b.Op(p+"/sum", "ReduceSum", []string{b64, b.Ints(p+"/sum/axes", -1)}, ir.AttrInt("keepdims", 0))
	log := b.Op(p+"/log", "Cast", []string{b.Op(p+"/Log", "Log", []string{sum})}, ir.AttrInt("to", int64(ir.Float32)))
	return b.Op(p+"/Add", "Add", []string{max, log}), nil
}
