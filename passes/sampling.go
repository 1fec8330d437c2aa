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
// Nucleus order is by logit, ties by lower id. When top-k truncates, the
// kept tokens come sorted from one TopK and the draw is a direct inverse
// CDF over their nucleus (every row accepted). Otherwise the draw is exact
// rejection sampling with no sort of the vocabulary: each round draws a
// proposal from the temperature softmax (inverse CDF in vocabulary order,
// in float64), and accepts it when the mass of the tokens ranked before it
// is below top-p: the accepted token is then distributed as the
// renormalised nucleus. The rounds run side by side and the first accepted
// one wins; a row whose rounds were all rejected reports sample_accepted
// false, and the caller draws again with fresh numbers (a proposal is
// accepted with probability at least top-p). At temperature 1 the weights
// and their block sums are greedy-outputs' (the log-sum-exp's
// exponentials), so a step makes three passes over the vocabulary beyond
// the greedy ones. Greedy settings take the argmax computed by
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
	gw, err := greedyWeights(prod, lse, vocab.Value)
	if err != nil {
		return err
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

	then, err := sampleBranch(p+"/then", flat, maxv, lse, gw, vocab.Value, opset)
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

// blockWeights names the float32 weights of the tokens blocked as
// [batch, nb, bs] (padding weighs 0) and their block sums in float64
// [batch, nb].
type blockWeights struct{ blocks, sum64 string }

// greedyWeights finds, behind greedy-outputs' log-sum-exp lse, the
// blocked exponentials exp(l − max) and their float64 block sums
// (blockLogSumExp's): the temperature-1 weights.
func greedyWeights(prod map[string]*ir.Node, lse string, vocab int64) (blockWeights, error) {
	fail := fmt.Errorf("passes: sample-outputs needs greedy-outputs' blocked log-sum-exp behind %q", lse)
	walk := func(v string, ops ...string) (*ir.Node, bool) {
		var n *ir.Node
		for _, op := range ops {
			n = prod[v]
			if n == nil || n.OpType != op || len(n.Inputs) == 0 {
				return nil, false
			}
			v = n.Inputs[0]
		}
		return n, true
	}
	add := prod[lse]
	if add == nil || add.OpType != "Add" || len(add.Inputs) != 2 {
		return blockWeights{}, fail
	}
	// lse = max + Cast(Log(ReduceSum(Cast(ReduceSum(Reshape(Exp or
	// Pad(Exp))))))): b64 is the float64 block sums, blocks the reshape.
	b64, ok := walk(add.Inputs[1], "Cast", "Log", "ReduceSum", "Cast")
	if !ok {
		return blockWeights{}, fail
	}
	blocks, ok := walk(b64.Inputs[0], "ReduceSum", "Reshape")
	if !ok {
		return blockWeights{}, fail
	}
	bs, nb := blocking(vocab)
	e := prod[blocks.Inputs[0]]
	if bs*nb != vocab {
		if e == nil || e.OpType != "Pad" {
			return blockWeights{}, fail
		}
		e = prod[e.Inputs[0]]
	}
	if e == nil || e.OpType != "Exp" {
		return blockWeights{}, fail
	}
	return blockWeights{blocks: blocks.Outputs[0], sum64: b64.Outputs[0]}, nil
}

// sub builds the nodes of one graph or If branch under a name prefix
// (distinct per branch, so that no two branches define the same value).
type sub struct {
	b     *ir.Builder
	p     string
	opset int64
}

// newSub starts a graph named name that reads the outer values outer.
func newSub(name string, opset int64, outer ...string) (*ir.Graph, *sub) {
	g := &ir.Graph{Name: name}
	b := ir.NewBuilder(g)
	b.Reserve(outer...)
	return g, &sub{b: b, p: name, opset: opset}
}

func (s *sub) op(name, typ string, in ...string) string { return s.b.Op(s.p+"/"+name, typ, in) }

func (s *sub) opA(name, typ string, in []string, attrs ...*onnxpb.AttributeProto) string {
	return s.b.Op(s.p+"/"+name, typ, in, attrs...)
}

func (s *sub) ints(name string, v ...int64) string { return s.b.Ints(s.p+"/"+name, v...) }

func (s *sub) scalar(name string, dt ir.DType, v float64) string {
	return s.b.Scalar(s.p+"/"+name, dt, v)
}

// reduce reduces x over axis (ReduceMax took its axes as an attribute
// before opset 18).
func (s *sub) reduce(name, typ, x string, axis, keep int64) string {
	if typ == "ReduceSum" || s.opset >= 18 {
		return s.opA(name, typ, []string{x, s.ints(name+"/axes", axis)}, ir.AttrInt("keepdims", keep))
	}
	return s.opA(name, typ, []string{x}, ir.AttrInts("axes", axis), ir.AttrInt("keepdims", keep))
}

func (s *sub) unsq(name, x string, axes ...int64) string {
	return s.op(name, "Unsqueeze", x, s.ints(name+"/axes", axes...))
}

func (s *sub) squeeze(name, x string, axes ...int64) string {
	return s.op(name, "Squeeze", x, s.ints(name+"/axes", axes...))
}

func (s *sub) cast(name, x string, dt ir.DType) string {
	return s.opA(name, "Cast", []string{x}, ir.AttrInt("to", int64(dt)))
}

func (s *sub) gather(name, x, idx string, axis int64) string {
	return s.opA(name, "GatherElements", []string{x, idx}, ir.AttrInt("axis", axis))
}

// last slices the last entry of x's last axis, keeping the axis.
func (s *sub) last(name, x string) string {
	return s.op(name, "Slice", x, s.ints(name+"/starts", -1), s.ints(name+"/ends", 1<<62), s.ints(name+"/axes", -1))
}

// count returns, along the last axis, how many entries of cum [.., n] are
// below target [..]: the index of the first entry reaching it, clipped to
// lastIdx (an int64 scalar, n−1).
func (s *sub) count(name, cum, target, lastIdx string) string {
	below := s.cast(name+"/below/i64", s.op(name+"/below", "Less", cum, s.unsq(name+"/target", target, -1)), ir.Int64)
	return s.op(name+"/clip", "Min", s.reduce(name+"/sum", "ReduceSum", below, -1, 0), lastIdx)
}

// ifOp adds an If node with n outputs choosing between two branches.
func (s *sub) ifOp(name, cond string, then, els *ir.Graph, n int) ([]string, error) {
	ta, err := ir.AttrGraph("then_branch", then)
	if err != nil {
		return nil, err
	}
	ea, err := ir.AttrGraph("else_branch", els)
	if err != nil {
		return nil, err
	}
	return s.b.OpN(s.p+"/"+name, "If", []string{cond}, n, ta, ea), nil
}

// samplerIn are the values every branch of the sampler reads.
type samplerIn struct {
	flat, maxv, topP, pOff string // pOff: top-p keeps every token
	vocab, bs, nb          int64
}

func (in samplerIn) outer() []string {
	return []string{in.flat, in.maxv, in.topP, in.pOff,
		names.SampleTemperature, names.SampleTopK, names.SampleTopP, names.SampleUniform}
}

// sampleBranch builds the If branch that samples: flat holds the float32
// [batch, vocab] logits, maxv and lse their max and log-sum-exp [batch],
// gw the temperature-1 weights. It dispatches on the settings: top-k
// truncation (sorted, direct), temperature 1 (greedy's weights) or another
// temperature (weights computed here); the last two draw by rejection.
func sampleBranch(p, flat, maxv, lse string, gw blockWeights, vocab, opset int64) (*ir.Graph, error) {
	g, s := newSub(p, opset, flat, maxv, lse, gw.blocks, gw.sum64,
		names.SampleTemperature, names.SampleTopK, names.SampleTopP, names.SampleUniform)
	bs, nb := blocking(vocab)
	in := samplerIn{flat: flat, maxv: maxv, vocab: vocab, bs: bs, nb: nb}
	in.topP = s.cast("p64", names.SampleTopP, ir.Float64)
	in.pOff = s.op("p/off", "Or", s.op("p/low", "LessOrEqual", in.topP, s.scalar("p/zero", ir.Float64, 0)),
		s.op("p/high", "GreaterOrEqual", in.topP, s.scalar("p/one", ir.Float64, 1)))
	k := names.SampleTopK
	truncK := s.op("k/truncates", "And", s.op("k/positive", "Greater", k, s.scalar("k/zero", ir.Int64, 0)),
		s.op("k/below", "Less", k, s.scalar("k/vocab", ir.Int64, float64(vocab))))

	topk, err := topKBranch(p+"/topk", in, opset)
	if err != nil {
		return nil, err
	}
	// Without top-k truncation: rejection over the whole vocabulary, on
	// greedy's weights at temperature 1 (the common case, one If deep),
	// else on weights computed here.
	lBlocks := flat
	if bs*nb != vocab {
		lBlocks = s.op("logits/padded", "Pad", flat, s.ints("logits/pad", 0, 0, 0, bs*nb-vocab))
	}
	lBlocks = s.op("logits/blocks", "Reshape", lBlocks, s.ints("logits/blocks/shape", 0, nb, bs)) // [batch, nb, bs]
	t1, t1s := newSub(p+"/t1", opset, append(in.outer(), gw.blocks, gw.sum64, lBlocks)...)
	tok1, ok1 := rejection(t1s, in, gw, lBlocks)
	t1.Outputs = branchOutputs(tok1, ok1)
	tt, tts := newSub(p+"/t", opset, append(in.outer(), lBlocks)...)
	invT := tts.op("invT", "Reciprocal", names.SampleTemperature)
	z := tts.op("scaled", "Mul", flat, invT)
	m := tts.unsq("max", tts.op("max/scaled", "Mul", maxv, invT), -1)
	w := tts.op("w", "Exp", tts.op("shifted", "Sub", z, m))
	if bs*nb != vocab {
		w = tts.op("w/padded", "Pad", w, tts.ints("w/pad", 0, 0, 0, bs*nb-vocab))
	}
	blocks := tts.op("w/blocks", "Reshape", w, tts.ints("w/blocks/shape", 0, nb, bs))
	sum64 := tts.cast("w/block/sum64", tts.reduce("w/block/sum", "ReduceSum", blocks, -1, 0), ir.Float64)
	tokT, okT := rejection(tts, in, blockWeights{blocks: blocks, sum64: sum64}, lBlocks)
	tt.Outputs = branchOutputs(tokT, okT)
	other, ob := newSub(p+"/other", opset, append(in.outer(), lBlocks, truncK)...)
	oo, err := ob.ifOp("topk", truncK, topk, tt, 2)
	if err != nil {
		return nil, err
	}
	other.Outputs = branchOutputs(oo[0], oo[1])
	isT1 := s.op("t/one", "Equal", names.SampleTemperature, s.scalar("t/one/value", ir.Float32, 1))
	common := s.op("common", "And", isT1, s.op("k/keeps", "Not", truncK))
	drawn, err := s.ifOp("draw", common, t1, other, 2)
	if err != nil {
		return nil, err
	}
	token, ok := drawn[0], drawn[1]
	// The policy log-prob: raw logit − log-sum-exp (temperature 1).
	tl := s.squeeze("logprob/logit", s.gather("logprob/gather", flat, s.unsq("token/2d", token, -1), -1), -1)
	lp := s.op("logprob", "Sub", tl, lse)
	g.Outputs = []*ir.ValueInfo{
		{Name: token, Type: ir.TensorType(ir.Int64, ir.Dim{Value: -1})},
		{Name: lp, Type: ir.TensorType(ir.Float32, ir.Dim{Value: -1})},
		{Name: ok, Type: ir.TensorType(ir.Bool, ir.Dim{Value: -1})},
	}
	return g, nil
}

func branchOutputs(token, ok string) []*ir.ValueInfo {
	return []*ir.ValueInfo{
		{Name: token, Type: ir.TensorType(ir.Int64, ir.Dim{Value: -1})},
		{Name: ok, Type: ir.TensorType(ir.Bool, ir.Dim{Value: -1})},
	}
}

// topKBranch draws from the top k tokens, which one TopK returns sorted
// (ties: lower id first, as the ONNX spec orders them): the nucleus is a
// prefix of them (the tokens whose preceding mass is below top-p of the
// kept mass), and the draw an inverse CDF over it with the row's first
// uniform number, in float64. Every row is accepted.
func topKBranch(p string, in samplerIn, opset int64) (*ir.Graph, error) {
	g, s := newSub(p, opset, in.outer()...)
	kk := s.op("k", "Reshape", names.SampleTopK, s.ints("k/shape", 1))
	top := s.b.OpN(p+"/TopK", "TopK", []string{in.flat, kk}, 2, ir.AttrInt("axis", -1), ir.AttrInt("largest", 1), ir.AttrInt("sorted", 1))
	vals, idx := top[0], top[1] // [batch, k]
	// The weights exp((l − max)/T), computed as for the whole vocabulary.
	invT := s.op("invT", "Reciprocal", names.SampleTemperature)
	m := s.unsq("max", s.op("max/scaled", "Mul", in.maxv, invT), -1)
	w := s.cast("w64", s.op("w", "Exp", s.op("shifted", "Sub", s.op("scaled", "Mul", vals, invT), m)), ir.Float64)
	axis := s.scalar("cum/axis", ir.Int64, -1)
	cum := s.opA("cum", "CumSum", []string{w, axis})
	total := s.last("total", cum) // [batch, 1]
	before := s.op("before", "Sub", cum, w)
	inNucleus := s.op("nucleus", "Or", s.op("nucleus/mass", "Less", before, s.op("nucleus/limit", "Mul", in.topP, total)), in.pOff)
	keep := s.op("keep", "And", inNucleus, s.op("positive", "Greater", w, s.scalar("zero", ir.Float64, 0)))
	kcum := s.opA("kept/cum", "CumSum", []string{s.op("kept", "Where", keep, w, s.scalar("kept/zero", ir.Float64, 0)), axis})
	u := s.op("u", "Slice", names.SampleUniform, s.ints("u/starts", 0), s.ints("u/ends", 1), s.ints("u/axes", 1)) // [batch, 1]
	target := s.squeeze("target", s.op("target/scaled", "Mul", u, s.last("kept/total", kcum)), -1)
	pick := s.count("pick", kcum, target, s.op("k/last", "Sub", names.SampleTopK, s.scalar("one", ir.Int64, 1)))
	token := s.squeeze("token", s.gather("token/gather", idx, s.unsq("pick/2d", pick, -1), -1), -1)
	ok := s.op("accepted", "Expand", s.scalar("true", ir.Bool, 1), s.op("shape", "Shape", token))
	g.Outputs = branchOutputs(token, ok)
	return g, nil
}

// rejection draws proposals by inverse CDF over the blocked weights w and
// accepts those whose preceding mass is below top-p; it returns the token
// of each row's first accepted round and whether one was. lBlocks holds the
// logits blocked like the weights.
//
// A proposal c is preceded by the tokens with a higher logit and those
// with its logit and a lower id. One comparison per element counts both:
// against c's logit l_c in the blocks before c's block (ties there have
// lower ids) and against the next float32 above l_c elsewhere (strictly
// higher); the ties inside c's own block, already gathered for the
// proposal, are added from there. The masked weights are summed in float32
// per block and in float64 over blocks, like the total.
func rejection(s *sub, in samplerIn, w blockWeights, lBlocks string) (token, ok string) {
	bs, nb := in.bs, in.nb
	// Proposals by inverse CDF in vocabulary order, in two levels: the
	// block whose cumulative weight first reaches u·total, then the token
	// inside it. Sums are float64.
	bcum := s.opA("block/cum", "CumSum", []string{w.sum64, s.scalar("block/cum/axis", ir.Int64, -1)}) // [batch, nb]
	total := s.last("total", bcum)                                                                    // [batch, 1]
	target := s.op("target", "Mul", names.SampleUniform, total)                                       // [batch, rounds]
	blk := s.count("block/pick", s.unsq("block/cum/3d", bcum, 1), target, s.scalar("block/last", ir.Int64, float64(nb-1)))
	before := s.op("block/before", "Sub", s.gather("block/cum/at", bcum, blk, -1), s.gather("block/sum/at", w.sum64, blk, -1))
	rest := s.op("rest", "Sub", target, before) // [batch, rounds]
	// The proposal's block, gathered per row (GatherND with one batch dim).
	bidx := s.unsq("block/index", blk, -1)                                                        // [batch, rounds, 1]
	innerW := s.opA("inner/w", "GatherND", []string{w.blocks, bidx}, ir.AttrInt("batch_dims", 1)) // [batch, rounds, bs]
	icum := s.opA("inner/cum", "CumSum", []string{s.cast("inner/w64", innerW, ir.Float64), s.scalar("inner/cum/axis", ir.Int64, -1)})
	off := s.count("inner/pick", icum, rest, s.scalar("inner/last", ir.Int64, float64(bs-1))) // [batch, rounds]
	cand := s.op("proposal", "Add", s.op("proposal/base", "Mul", blk, s.scalar("proposal/bs", ir.Int64, float64(bs))), off)
	cand = s.op("proposal/clip", "Min", cand, s.scalar("proposal/max", ir.Int64, float64(in.vocab-1))) // [batch, rounds]
	off3 := s.unsq("inner/pick/3d", off, -1)
	wc := s.squeeze("proposal/w", s.gather("proposal/w/3d", innerW, off3, -1), -1)                    // [batch, rounds]
	innerL := s.opA("inner/logits", "GatherND", []string{lBlocks, bidx}, ir.AttrInt("batch_dims", 1)) // [batch, rounds, bs]
	lc := s.gather("proposal/logit", innerL, off3, -1)                                                // [batch, rounds, 1]

	// up = the next float32 above l_c: l_c + max(|l_c|·2⁻²⁴(1+2⁻¹⁶), 2⁻¹⁴⁹)
	// lies strictly between half a step and one and a half steps above
	// l_c (the step below a power of two is half the one above), so it
	// rounds to the next float32.
	step := s.op("up/step", "Max", s.op("up/scaled", "Mul", s.op("up/abs", "Abs", lc), s.scalar("up/factor", ir.Float32, math.Ldexp(1+math.Ldexp(1, -16), -24))),
		s.scalar("up/min", ir.Float32, math.Ldexp(1, -149)))
	up := s.op("up", "Add", lc, step)
	blockIDs := s.b.Const(ir.NewTensorI64(s.p+"/block/ids", []int64{nb, 1}, seq(nb)))
	earlier := s.op("block/earlier", "Less", blockIDs, s.unsq("block/pick/4d", blk, -1, -2))                 // [batch, rounds, nb, 1]
	thr := s.op("threshold", "Where", earlier, s.unsq("proposal/logit/4d", lc, -1), s.unsq("up/4d", up, -1)) // [batch, rounds, nb, 1]
	ahead := s.op("ahead", "GreaterOrEqual", s.unsq("logits/4d", lBlocks, 1), thr)                           // [batch, rounds, nb, bs]
	// Cast and Mul: ONNX Runtime's Where makes three passes, and a batched
	// MatMul over the blocks is slower still.
	aheadW := s.op("ahead/w", "Mul", s.cast("ahead/f32", ahead, ir.Float32), s.unsq("w/4d", w.blocks, 1)) // [batch, rounds, nb, bs]
	aheadB := s.cast("ahead/blocks64", s.reduce("ahead/blocks", "ReduceSum", aheadW, -1, 0), ir.Float64)  // [batch, rounds, nb]
	mass := s.reduce("ahead/mass", "ReduceSum", aheadB, -1, 0)                                            // [batch, rounds]
	slotIDs := s.b.Const(ir.NewTensorI64(s.p+"/inner/ids", []int64{bs}, seq(bs)))
	tied := s.op("tied", "And", s.op("tied/equal", "Equal", innerL, lc), s.op("tied/lower", "Less", slotIDs, off3)) // [batch, rounds, bs]
	tiedW := s.reduce("tied/mass", "ReduceSum", s.op("tied/w", "Where", tied, innerW, s.scalar("tied/zero", ir.Float32, 0)), -1, 0)
	mass = s.op("mass", "Add", mass, s.cast("tied/mass64", tiedW, ir.Float64))

	positive := s.op("proposal/positive", "Greater", wc, s.scalar("zero", ir.Float32, 0))
	accept := s.op("accept", "And", positive, s.op("accept/p", "Or", s.op("accept/mass", "Less", mass, s.op("accept/limit", "Mul", in.topP, total)), in.pOff)) // [batch, rounds]
	// The first accepted round (ArgMax returns the first maximum).
	acc32 := s.cast("accept/f32", accept, ir.Float32)
	first := s.opA("first", "ArgMax", []string{acc32}, ir.AttrInt("axis", -1), ir.AttrInt("keepdims", 1)) // [batch, 1]
	token = s.squeeze("token", s.gather("token/gather", cand, first, -1), -1)
	ok = s.cast("accepted", s.reduce("accepted/any", "ReduceMax", acc32, -1, 0), ir.Bool)
	return token, ok
}

// seq returns 0, 1, …, n−1.
func seq(n int64) []int64 {
	v := make([]int64, n)
	for i := range v {
		v[i] = int64(i)
	}
	return v
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
