package passes

import (
	"fmt"
	"math"

	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/ir/onnxpb"
	"github.com/dartc/dartc/passes/names"
)

// SampleOutputs adds temperature, top-k and top-p (nucleus) sampling of the
// next token to decode.onnx, so that sampled decoding never copies the
// logits out of ONNX Runtime.
//
// Inputs: sample_temperature (float32 scalar; ≤ 0 is greedy), sample_top_k
// (int64 scalar; 0 or ≥ vocab keeps every token), sample_top_p (float32
// scalar; ≤ 0 or ≥ 1 keeps every token) and sample_uniform (float64
// [batch, rounds], uniform numbers in (0, 1] drawn by the caller from its
// seeded per-row streams). Outputs: sample_token (int64 [batch]),
// sample_logprob (float32 [batch]: log-softmax of the raw logits at the
// token, the temperature-1 policy log-prob GRPO's ratio needs) and
// sample_accepted (bool [batch]).
//
// The draw is exact rejection sampling, with no sort of the vocabulary:
// each round draws a proposal from the temperature softmax restricted to
// the top-k tokens (inverse CDF over a cumulative sum in vocabulary order,
// in float64), and accepts it when the mass of the tokens more likely than
// it (higher logit, or an equal logit and a lower id) is below top-p: the
// accepted token is then distributed as the renormalised nucleus. The
// rounds run side by side and the first accepted one wins; a row whose
// rounds were all rejected reports sample_accepted false, and the caller
// draws again with fresh numbers (a proposal is accepted with probability
// at least top-p). Greedy settings take the argmax computed by
// greedy-outputs, in an If branch, so greedy steps do no sampling work.
func SampleOutputs(s *State) error {
	g := s.Model.Graph
	prod := producers(g)
	// Reuse greedy-outputs' [batch, vocab] logits, max and log-sum-exp.
	nt, nl := prod[names.NextToken], prod[names.NextLogprob]
	if nt == nil || nl == nil || len(nl.Inputs) != 2 || prod[nt.Inputs[0]] == nil || prod[nt.Inputs[0]].OpType != "ArgMax" {
		return fmt.Errorf("passes: sample-outputs needs the outputs of greedy-outputs (run it first)")
	}
	flat := prod[nt.Inputs[0]].Inputs[0]
	maxv, lse := nl.Inputs[0], nl.Inputs[1]
	out := g.Output(LogitsOutput)
	batch := out.Type.Dims[0]
	vocab := out.Type.Dims[2]
	if !vocab.Known() {
		return fmt.Errorf("passes: sample-outputs needs a known vocabulary size, the logits are %v", out.Type)
	}
	for _, n := range []string{names.SampleTemperature, names.SampleTopK, names.SampleTopP, names.SampleUniform} {
		if g.Input(n) != nil {
			return fmt.Errorf("passes: the graph already has an input %q", n)
		}
	}
	g.Inputs = append(g.Inputs,
		&ir.ValueInfo{Name: names.SampleTemperature, Type: ir.TensorType(ir.Float32), Doc: "sampling temperature; ≤ 0 picks the argmax"},
		&ir.ValueInfo{Name: names.SampleTopK, Type: ir.TensorType(ir.Int64), Doc: "keep the k most likely tokens; 0 keeps every token"},
		&ir.ValueInfo{Name: names.SampleTopP, Type: ir.TensorType(ir.Float32), Doc: "nucleus mass; ≤ 0 or ≥ 1 keeps every token"},
		&ir.ValueInfo{Name: names.SampleUniform, Type: ir.TensorType(ir.Float64, batch, ir.Dim{Value: -1, Param: "rounds"}),
			Doc: "uniform numbers in (0, 1], one per row and rejection round, from the caller's seeded streams"})
	b := s.Builder()
	b.Reserve(names.SampleTemperature, names.SampleTopK, names.SampleTopP, names.SampleUniform)
	const p = "/lm_head/sample"
	opset := s.Model.OpsetVersion("")

	then, err := sampleBranch(p+"/then", flat, maxv, lse, vocab.Value, opset)
	if err != nil {
		return err
	}
	// The greedy branch: next_token and its log-prob, every row accepted.
	els := &ir.Graph{Name: p + "/greedy"}
	eb := ir.NewBuilder(els)
	eb.Reserve(flat, maxv, lse, names.NextToken, names.NextLogprob)
	tok := eb.Op(p+"/greedy/token", "Identity", []string{names.NextToken})
	lp := eb.Op(p+"/greedy/logprob", "Identity", []string{names.NextLogprob})
	shape := eb.Op(p+"/greedy/shape", "Shape", []string{names.NextToken})
	acc := eb.Op(p+"/greedy/accepted", "Expand", []string{eb.Scalar(p+"/greedy/true", ir.Bool, 1), shape})
	els.Outputs = []*ir.ValueInfo{
		{Name: tok, Type: ir.TensorType(ir.Int64, batch)},
		{Name: lp, Type: ir.TensorType(ir.Float32, batch)},
		{Name: acc, Type: ir.TensorType(ir.Bool, batch)},
	}

	cond := b.Op(p+"/sampled", "Greater", []string{names.SampleTemperature, b.Scalar(p+"/zero", ir.Float32, 0)})
	thenAttr, err := ir.AttrGraph("then_branch", then)
	if err != nil {
		return err
	}
	elseAttr, err := ir.AttrGraph("else_branch", els)
	if err != nil {
		return err
	}
	b.Add(&ir.Node{Name: p + "/If", OpType: "If", Inputs: []string{cond},
		Outputs: []string{names.SampleToken, names.SampleLogprob, names.SampleAccepted}, Attrs: []*onnxpb.AttributeProto{thenAttr, elseAttr}})
	g.Outputs = append(g.Outputs,
		&ir.ValueInfo{Name: names.SampleToken, Type: ir.TensorType(ir.Int64, batch), Doc: "the sampled next token (the argmax when greedy)"},
		&ir.ValueInfo{Name: names.SampleLogprob, Type: ir.TensorType(ir.Float32, batch), Doc: "log-softmax of the raw last logits at sample_token (temperature 1, no truncation)"},
		&ir.ValueInfo{Name: names.SampleAccepted, Type: ir.TensorType(ir.Bool, batch), Doc: "false where every rejection round of the row was rejected: draw again"})
	return ir.TopoSort(g)
}

// sampleBranch builds the If branch that samples: flat holds the float32
// [batch, vocab] logits, maxv and lse their max and log-sum-exp [batch].
// Every pass over the vocabulary is an element-wise op or a reduction; the
// cumulative sums run over blocks (a sum per block of the vocabulary, then
// one block), so that no op is sequential over the vocabulary.
func sampleBranch(p, flat, maxv, lse string, vocab, opset int64) (*ir.Graph, error) {
	g := &ir.Graph{Name: p}
	b := ir.NewBuilder(g)
	b.Reserve(flat, maxv, lse, names.SampleTemperature, names.SampleTopK, names.SampleTopP, names.SampleUniform)
	op := func(name, typ string, in ...string) string { return b.Op(p+"/"+name, typ, in) }
	opA := func(name, typ string, in []string, attrs ...*onnxpb.AttributeProto) string {
		return b.Op(p+"/"+name, typ, in, attrs...)
	}
	ints := func(name string, v ...int64) string { return b.Ints(p+"/"+name, v...) }
	i64 := func(name string, v int64) string { return b.Scalar(p+"/"+name, ir.Int64, float64(v)) }
	f64c := func(name string, v float64) string { return b.Scalar(p+"/"+name, ir.Float64, v) }
	reduce := func(name, typ, x string, axis, keep int64) string {
		if typ == "ReduceSum" || opset >= 18 {
			return opA(name, typ, []string{x, ints(name+"/axes", axis)}, ir.AttrInt("keepdims", keep))
		}
		return opA(name, typ, []string{x}, ir.AttrInts("axes", axis), ir.AttrInt("keepdims", keep))
	}
	unsq := func(name, x string, ax int64) string { return op(name, "Unsqueeze", x, ints(name+"/axes", ax)) }
	cast := func(name, x string, dt ir.DType) string {
		return opA(name, "Cast", []string{x}, ir.AttrInt("to", int64(dt)))
	}
	// count returns, along the last axis, how many entries of cum [.., n]
	// are below target [..]: the index of the first entry reaching it,
	// clipped to n−1.
	count := func(name, cum, target string, n int64) string {
		below := cast(name+"/below/f32", op(name+"/below", "Less", cum, unsq(name+"/target", target, -1)), ir.Float32)
		c := cast(name+"/count", reduce(name+"/sum", "ReduceSum", below, -1, 0), ir.Int64)
		return op(name+"/clip", "Min", c, i64(name+"/last", n-1))
	}

	// Weights w = exp((l − max)/T) of the kept tokens, in float32: all of
	// them, or the top k at TopK's indices (ties: lower id first, as the
	// ONNX spec orders them) when k truncates. Each branch computes w, so
	// neither copies a vocabulary-sized tensor.
	invT := op("invT", "Reciprocal", names.SampleTemperature)
	weights := func(bb *ir.Builder, name string) string {
		z := bb.Op(name+"/scaled", "Mul", []string{flat, invT})
		m := bb.Op(name+"/max", "Unsqueeze", []string{bb.Op(name+"/max/scaled", "Mul", []string{maxv, invT}), bb.Ints(name+"/max/axes", -1)})
		return bb.Op(name+"/w", "Exp", []string{bb.Op(name+"/shifted", "Sub", []string{z, m})})
	}
	k := names.SampleTopK
	truncK := op("k/truncates", "And", op("k/positive", "Greater", k, i64("k/zero", 0)), op("k/below", "Less", k, i64("k/vocab", vocab)))
	kg := &ir.Graph{Name: p + "/topk"}
	kb := ir.NewBuilder(kg)
	kb.Reserve(flat, maxv, invT, k)
	kn := p + "/topk"
	kw := weights(kb, kn)
	idx := kb.OpN(kn+"/TopK", "TopK", []string{flat, kb.Op(kn+"/k", "Reshape", []string{k, kb.Ints(kn+"/k/shape", 1)})}, 2,
		ir.AttrInt("axis", -1), ir.AttrInt("largest", 1), ir.AttrInt("sorted", 1))[1]
	kept := kb.Op(kn+"/kept", "ScatterElements", []string{kb.Op(kn+"/zeros", "Sub", []string{kw, kw}), idx,
		kb.Op(kn+"/gather", "GatherElements", []string{kw, idx}, ir.AttrInt("axis", -1))}, ir.AttrInt("axis", -1))
	kg.Outputs = []*ir.ValueInfo{{Name: kept, Type: ir.TensorType(ir.Float32, ir.Dim{Value: -1}, ir.Dim{Value: vocab})}}
	ag := &ir.Graph{Name: p + "/all"}
	ab := ir.NewBuilder(ag)
	ab.Reserve(flat, maxv, invT)
	aw := weights(ab, p+"/all")
	ag.Outputs = []*ir.ValueInfo{{Name: aw, Type: ir.TensorType(ir.Float32, ir.Dim{Value: -1}, ir.Dim{Value: vocab})}}
	thenK, err := ir.AttrGraph("then_branch", kg)
	if err != nil {
		return nil, err
	}
	elseK, err := ir.AttrGraph("else_branch", ag)
	if err != nil {
		return nil, err
	}
	w := opA("weights", "If", []string{truncK}, thenK, elseK) // [batch, vocab]

	// Proposals by inverse CDF in vocabulary order, in two levels: the
	// block whose cumulative weight first reaches u·total, then the token
	// inside it. Sums are float64.
	bs, nb := blocking(vocab)
	wp := w
	if bs*nb != vocab {
		wp = op("padded", "Pad", w, ints("pad", 0, 0, 0, bs*nb-vocab))
	}
	blocks := op("blocks", "Reshape", wp, ints("blocks/shape", 0, nb, bs))                                           // [batch, nb, bs]
	bsum := cast("block/sum64", reduce("block/sum", "ReduceSum", blocks, -1, 0), ir.Float64)                         // [batch, nb]
	bcum := opA("block/cum", "CumSum", []string{bsum, i64("block/cum/axis", -1)})                                    // [batch, nb]
	total := op("total", "Slice", bcum, ints("total/starts", -1), ints("total/ends", 1<<62), ints("total/axes", -1)) // [batch, 1]
	target := op("target", "Mul", names.SampleUniform, total)                                                        // [batch, rounds]
	blk := count("block/pick", unsq("block/cum/3d", bcum, 1), target, nb)                                            // [batch, rounds]
	before := op("block/before", "Sub", opA("block/cum/at", "GatherElements", []string{bcum, blk}, ir.AttrInt("axis", -1)),
		opA("block/sum/at", "GatherElements", []string{bsum, blk}, ir.AttrInt("axis", -1)))
	rest := op("rest", "Sub", target, before) // [batch, rounds]
	bidx := op("block/index", "Expand", unsq("block/index/3d", blk, -1), opA("block/index/shape", "Concat",
		[]string{op("block/index/shape/br", "Shape", blk), ints("block/index/shape/bs", bs)}, ir.AttrInt("axis", 0)))
	inner := cast("inner/w64", opA("inner/w", "GatherElements", []string{blocks, bidx}, ir.AttrInt("axis", 1)), ir.Float64) // [batch, rounds, bs]
	icum := opA("inner/cum", "CumSum", []string{inner, i64("inner/cum/axis", -1)})
	off := count("inner/pick", icum, rest, bs)
	cand := op("proposal", "Add", op("proposal/base", "Mul", blk, i64("proposal/bs", bs)), off)
	cand = op("proposal/clip", "Min", cand, i64("proposal/max", vocab-1)) // [batch, rounds]

	// Acceptance: the weight of the tokens ranked before the proposal
	// (higher logit, or equal logit and lower id) is below p·total. The
	// weight of the higher ones is summed like the total (float32 blocks,
	// float64 over blocks). Kept tokens with the proposal's logit all have
	// its weight, and those with lower ids are kept whenever it is (top-k
	// keeps ties by id), so the equal ones add w(proposal) times their
	// count, which only needs the ids when some row has a tie at all.
	lc := unsq("proposal/logit", opA("proposal/gather", "GatherElements", []string{flat, cand}, ir.AttrInt("axis", -1)), -1) // [batch, rounds, 1]
	flat3 := unsq("flat/3d", flat, 1)                                                                                        // [batch, 1, vocab]
	higher := op("ahead/higher/w", "Mul", cast("ahead/higher/f32", op("ahead/higher", "Greater", flat3, lc), ir.Float32), unsq("w/3d", w, 1))
	if bs*nb != vocab {
		higher = op("ahead/higher/padded", "Pad", higher, ints("ahead/higher/pad", 0, 0, 0, 0, 0, bs*nb-vocab))
	}
	hb := reduce("ahead/higher/blocks", "ReduceSum", op("ahead/higher/reshape", "Reshape", higher, ints("ahead/higher/shape", 0, 0, nb, bs)), -1, 0)
	massHigher := reduce("ahead/higher/mass", "ReduceSum", cast("ahead/higher/blocks64", hb, ir.Float64), -1, 0) // [batch, rounds]
	equal := op("ahead/equal", "Equal", flat3, lc)
	nEqual := reduce("ahead/equal/count", "ReduceSum", cast("ahead/equal/f32", equal, ir.Float32), -1, 0) // [batch, rounds], ≥ 1
	anyTie := op("ahead/tie/any", "Greater", reduce("ahead/tie/max", "ReduceMax", op("ahead/tie/flat", "Reshape", nEqual, ints("ahead/tie/flat/shape", -1)), -1, 0),
		b.Scalar(p+"/ahead/tie/one", ir.Float32, 1.5))
	tg := &ir.Graph{Name: p + "/ties"}
	tb := ir.NewBuilder(tg)
	tb.Reserve(equal, cand)
	tn := p + "/ties"
	ids := tb.Op(tn+"/ids", "Range", []string{tb.Scalar(tn+"/ids/start", ir.Int64, 0), tb.Scalar(tn+"/ids/limit", ir.Int64, float64(vocab)), tb.Scalar(tn+"/ids/delta", ir.Int64, 1)})
	lower := tb.Op(tn+"/lower", "Less", []string{ids, tb.Op(tn+"/proposal/3d", "Unsqueeze", []string{cand, tb.Ints(tn+"/proposal/3d/axes", -1)})})
	tieBefore := tb.Op(tn+"/before", "Cast", []string{tb.Op(tn+"/and", "And", []string{equal, lower})}, ir.AttrInt("to", int64(ir.Float32)))
	nBefore := tb.Op(tn+"/count", "ReduceSum", []string{tieBefore, tb.Ints(tn+"/count/axes", -1)}, ir.AttrInt("keepdims", 0))
	tg.Outputs = []*ir.ValueInfo{{Name: nBefore, Type: ir.TensorType(ir.Float32, ir.Dim{Value: -1}, ir.Dim{Value: -1})}}
	ng := &ir.Graph{Name: p + "/no_ties"}
	nbld := ir.NewBuilder(ng)
	nbld.Reserve(nEqual)
	none := nbld.Op(p+"/no_ties/zero", "Sub", []string{nEqual, nEqual})
	ng.Outputs = []*ir.ValueInfo{{Name: none, Type: ir.TensorType(ir.Float32, ir.Dim{Value: -1}, ir.Dim{Value: -1})}}
	thenT, err := ir.AttrGraph("then_branch", tg)
	if err != nil {
		return nil, err
	}
	elseT, err := ir.AttrGraph("else_branch", ng)
	if err != nil {
		return nil, err
	}
	nTied := opA("ahead/tied", "If", []string{anyTie}, thenT, elseT) // [batch, rounds]
	wc := opA("proposal/w", "GatherElements", []string{w, cand}, ir.AttrInt("axis", -1))
	mass := op("ahead/mass", "Add", massHigher, cast("ahead/tied/mass", op("ahead/tied/w", "Mul", nTied, wc), ir.Float64))
	zero := b.Scalar(p+"/zero32", ir.Float32, 0)
	topP := cast("p64", names.SampleTopP, ir.Float64)
	pOff := op("p/off", "Or", op("p/low", "LessOrEqual", topP, f64c("p/zero", 0)), op("p/high", "GreaterOrEqual", topP, f64c("p/one", 1)))
	positive := op("proposal/positive", "Greater", wc, zero)
	accept := op("accept", "And", positive, op("accept/p", "Or", op("accept/mass", "Less", mass, op("accept/limit", "Mul", topP, total)), pOff)) // [batch, rounds]

	// The first accepted round (ArgMax returns the first maximum).
	acc32 := cast("accept/f32", accept, ir.Float32)
	first := opA("first", "ArgMax", []string{acc32}, ir.AttrInt("axis", -1), ir.AttrInt("keepdims", 1)) // [batch, 1]
	token := op("token", "Squeeze", opA("token/gather", "GatherElements", []string{cand, first}, ir.AttrInt("axis", -1)), ints("token/axes", -1))
	ok := cast("accepted", reduce("accepted/any", "ReduceMax", acc32, -1, 0), ir.Bool)
	// The policy log-prob: raw logit − log-sum-exp (temperature 1).
	tl := op("logprob/logit", "Squeeze", opA("logprob/gather", "GatherElements", []string{flat, unsq("token/2d", token, -1)}, ir.AttrInt("axis", -1)), ints("logprob/axes", -1))
	lp := op("logprob", "Sub", tl, lse)
	g.Outputs = []*ir.ValueInfo{
		{Name: token, Type: ir.TensorType(ir.Int64, ir.Dim{Value: -1})},
		{Name: lp, Type: ir.TensorType(ir.Float32, ir.Dim{Value: -1})},
		{Name: ok, Type: ir.TensorType(ir.Bool, ir.Dim{Value: -1})},
	}
	return g, nil
}

// blocking splits a vocabulary of v ids into nb blocks of bs: a divisor
// pair near √v when there is one, else √v-sized blocks over a padded
// vocabulary.
func blocking(v int64) (bs, nb int64) {
	best := v + 1
	for d := int64(1); d*d <= v; d++ {
		if v%d == 0 && d+v/d < best+v/best {
			best = d
		}
	}
	bs, nb = v/best, best
	if bs+nb <= 4*int64(math.Sqrt(float64(v)))+4 {
		return bs, nb
	}
	bs = int64(math.Ceil(math.Sqrt(float64(v))))
	return bs, (v + bs - 1) / bs
}
