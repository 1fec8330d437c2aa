package passes

import (
	"fmt"
	"math"

	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/ir/onnxpb"
)

// Names of the loss-head inputs and outputs (DESIGN.md §6).
const (
	TokenWeightsInput = "token_weights"
	// LossScaleInput multiplies the loss's gradient seeds of float16 train
	// graphs (loss scaling); the adapters' gradients come out divided by it.
	LossScaleInput   = "loss_scale"
	AdvantagesInput  = "advantages"
	OldLogprobsInput = "old_logprobs"
	RefLogprobsInput = "ref_logprobs"
	ClipLowInput     = "clip_low"
	ClipHighInput    = "clip_high"
	KLCoefInput      = "kl_coef"
	EntropyCoefInput = "entropy_coeff"

	LossOutput     = "loss"
	LogprobsOutput = "logprobs"
	EntropyOutput  = "entropy"
	KLOutput       = "kl"
	ClippedOutput  = "clipped"
	RatioOutput    = "ratio"

	// GradPrefix names gradient outputs: grad.<adapter input>.
	GradPrefix = "grad."
)

// klClamp bounds the per-token k3 estimate as veRL's low_var_kl does.
const klClamp = 10

// DefaultHeadChunk is the number of positions the heads project onto the
// vocabulary at a time: the heads' largest tensors are [chunk, vocab].
const DefaultHeadChunk = 128

// HeadDType is the type of the loss head for a model: float64 for float64
// backbones (so gradient checks can run in double precision), float32
// otherwise.
func HeadDType(s *State) ir.DType {
	for _, in := range s.AdapterInputs {
		return in.Type.DType
	}
	return ir.Float32
}

// projection is the model's lm_head as the heads re-run it on chunks of
// rows: logits = rows·W (W [hidden, vocab]) or rows·Wᵀ (W [vocab, hidden]).
// When the head is not recognized, rows are the logits themselves (w
// empty): still correct, but the logits [batch, seq, vocab] then exist.
type projection struct {
	x       string   // the lm_head's input (or the logits)
	flatten bool     // x is [batch, seq, ·]: Flatten(x, 2) gives the rows
	w       string   // the weight, "" without a projection
	wT      bool     // w is [vocab, hidden]
	dt      ir.DType // dtype of x and of the logits the projection makes
}

// findProjection walks back from the logits through Casts to the lm_head:
// MatMul(x, W) with W an initializer (or its Transpose or Cast), or the Gemm
// form Reshape(Gemm(x2, W, transB), shape).
func findProjection(g *ir.Graph) (*projection, error) {
	out := g.Output(LogitsOutput)
	if out == nil || out.Type == nil || len(out.Type.Dims) != 3 {
		return nil, fmt.Errorf("passes: the graph has no logits [batch, seq, vocab] output for the loss head")
	}
	prod := producers(g)
	v := LogitsOutput
	n := prod[v]
	for n != nil && (n.OpType == "Cast" || n.OpType == "Identity") {
		v = n.Inputs[0]
		n = prod[v]
	}
	plain := &projection{x: LogitsOutput, flatten: true, dt: out.Type.DType}
	if n == nil || n.Domain != "" {
		return plain, nil
	}
	if n.OpType == "Reshape" {
		gm := prod[n.Inputs[0]]
		if gm == nil || gm.OpType != "Gemm" || gm.Domain != "" || gm.AttrInt("transA", 0) != 0 ||
			gm.AttrFloat("alpha", 1) != 1 || (len(gm.Inputs) > 2 && gm.Inputs[2] != "") || !isWeight(g, prod, gm.Inputs[1]) {
			return plain, nil
		}
		dt, ok := weightDType(g, prod, gm.Inputs[1])
		if !ok {
			return plain, nil
		}
		return &projection{x: gm.Inputs[0], w: gm.Inputs[1], wT: gm.AttrInt("transB", 0) == 1, dt: dt}, nil
	}
	if n.OpType != "MatMul" || !isWeight(g, prod, n.Inputs[1]) {
		return plain, nil
	}
	dt, ok := weightDType(g, prod, n.Inputs[1])
	if !ok {
		return plain, nil
	}
	p := &projection{x: n.Inputs[0], flatten: true, w: n.Inputs[1], dt: dt}
	// Use a transposed initializer as it is stored: no transposed copy.
	if t := prod[p.w]; t != nil && t.OpType == "Transpose" && g.Initializer(t.Inputs[0]) != nil && len(g.Initializer(t.Inputs[0]).Dims) == 2 {
		if perm := t.Attr("perm"); perm == nil || (len(perm.GetInts()) == 2 && perm.GetInts()[0] == 1) {
			p.w, p.wT = t.Inputs[0], true
		}
	}
	return p, nil
}

// weightDType follows isWeight's chain (Transpose, Cast) to the type of v.
func weightDType(g *ir.Graph, prod map[string]*ir.Node, v string) (ir.DType, bool) {
	for range 3 {
		if t := g.Initializer(v); t != nil {
			return t.DType, true
		}
		p := prod[v]
		if p == nil {
			return 0, false
		}
		if p.OpType == "Cast" {
			return ir.DType(p.AttrInt("to", 0)), true
		}
		v = p.Inputs[0]
	}
	return 0, false
}

// chunked builds a head over the positions a [batch, seq] bool mask
// selects: it gathers their rows, pads them to a multiple of the chunk
// size, and runs a Loop whose body projects one chunk onto the vocabulary.
// Positions the mask leaves out compute no logits.
type chunked struct {
	s      *State
	b      *ir.Builder
	p      *projection
	dt     ir.DType // head dtype
	prefix string
	chunk  int64

	rows   string // [b·s, ·] rows of x
	target string // [b, s] next token ids, 0 at the last position
	idx    string // [n] flat indices of the selected positions
	idx2   string // [n, 1]
	n      string // [1]
	trips  string // [] number of chunks, at least 1
	padN   string // [1] rows of padding after the n selected ones
}

func newChunked(s *State, p *projection, prefix string) *chunked {
	c := &chunked{s: s, b: s.Builder(), p: p, dt: HeadDType(s), prefix: prefix, chunk: int64(s.Opts.HeadChunk)}
	if c.chunk <= 0 {
		c.chunk = DefaultHeadChunk
	}
	b := c.b
	c.rows = p.x
	if p.flatten {
		c.rows = b.Op(prefix+"/rows/Flatten", "Flatten", []string{p.x}, ir.AttrInt("axis", 2))
	}
	next := b.Op(prefix+"/next/Slice", "Slice", []string{"input_ids", b.Ints(prefix+"/next/starts", 1),
		b.Ints(prefix+"/next/ends", math.MaxInt64), b.Ints(prefix+"/next/axes", 1)})
	c.target = b.Op(prefix+"/target/Pad", "Pad", []string{next, c.lastPad()})
	return c
}

func (c *chunked) lastPad() string { return c.b.Ints(c.prefix+"/pads", 0, 0, 0, 1) }

// notLast is a bool [b, s] mask, true where a next token exists.
func (c *chunked) notLast() string {
	b, p := c.b, c.prefix
	next := b.Op(p+"/notlast/Slice", "Slice", []string{"input_ids", b.Ints(p+"/notlast/starts", 1),
		b.Ints(p+"/notlast/ends", math.MaxInt64), b.Ints(p+"/notlast/axes", 1)})
	ones := b.Op(p+"/notlast/ConstantOfShape", "ConstantOfShape",
		[]string{b.Op(p+"/notlast/Shape", "Shape", []string{next})},
		ir.AttrTensor("value", ir.NewTensorI64("value", []int64{1}, []int64{1})))
	padded := b.Op(p+"/notlast/Pad", "Pad", []string{ones, c.lastPad()})
	return castTo(b, p+"/notlast/Cast", padded, ir.Bool)
}

// selectRows computes the flat indices of the positions sel [b, s] marks
// and the chunk count.
func (c *chunked) selectRows(sel string) {
	b, p := c.b, c.prefix
	flat := b.Op(p+"/select/flat", "Reshape", []string{sel, b.Ints(p+"/select/flat/shape", -1)})
	nz := b.Op(p+"/select/NonZero", "NonZero", []string{flat})
	c.idx = b.Op(p+"/select/idx", "Reshape", []string{nz, b.Ints(p+"/select/idx/shape", -1)})
	c.idx2 = b.Op(p+"/select/idx2", "Unsqueeze", []string{c.idx, b.Ints(p+"/select/idx2/axes", 1)})
	c.n = b.Op(p+"/select/n", "Shape", []string{c.idx})
	ch := b.Ints(p+"/chunk", c.chunk)
	k := b.Op(p+"/select/chunks", "Div", []string{b.Op(p+"/select/n+c-1", "Add", []string{c.n, b.Ints(p+"/chunk-1", c.chunk-1)}), ch})
	k = b.Op(p+"/select/chunks/atleast1", "Max", []string{k, b.Ints(p+"/one", 1)})
	c.trips = b.Op(p+"/select/trips", "Squeeze", []string{k, b.Ints(p+"/select/trips/axes", 0)})
	c.padN = b.Op(p+"/select/pad", "Sub", []string{b.Op(p+"/select/padded", "Mul", []string{k, ch}), c.n})
}

// gather takes the selected positions of a [b, s] value as a padded
// [chunks·chunk] vector (zeros after the n selected).
func (c *chunked) gather(name, v string) string {
	b, p := c.b, c.prefix+"/gather/"+name
	flat := b.Op(p+"/flat", "Reshape", []string{v, b.Ints(p+"/shape", -1)})
	g := b.Op(p+"/Gather", "Gather", []string{flat, c.idx}, ir.AttrInt("axis", 0))
	pads := b.Op(p+"/pads", "Concat", []string{b.Ints(p+"/pads/begin", 0), c.padN}, ir.AttrInt("axis", 0))
	return b.Op(p+"/Pad", "Pad", []string{g, pads})
}

// gatherRows is gather for the [b·s, ·] rows.
func (c *chunked) gatherRows() string {
	b, p := c.b, c.prefix+"/gather/rows"
	g := b.Op(p+"/Gather", "Gather", []string{c.rows, c.idx}, ir.AttrInt("axis", 0))
	pads := b.Op(p+"/pads", "Concat", []string{b.Ints(p+"/pads/begin", 0, 0), c.padN, b.Ints(p+"/pads/end", 0)}, ir.AttrInt("axis", 0))
	return b.Op(p+"/Pad", "Pad", []string{g, pads})
}

// body collects the Loop body: nodes are built through the main builder
// (names unique across both scopes, constants in the main graph) and moved
// into the body when it is closed.
type body struct {
	c            *chunked
	start        int
	iter, cond   string
	starts, ends string
	outs         []*ir.ValueInfo
}

func (c *chunked) openBody() *body {
	b, p := c.b, c.prefix+"/loop"
	// Constants first: they stay in the main graph.
	chunk := b.Scalar(p+"/chunk", ir.Int64, float64(c.chunk))
	one := b.Ints(p+"/shape1", 1)
	width := b.Ints(p+"/width", c.chunk)
	bd := &body{c: c, start: len(c.s.Model.Graph.Nodes), iter: b.Unique(p + "/iter"), cond: b.Unique(p + "/cond")}
	start := b.Op(p+"/start", "Reshape", []string{b.Op(p+"/offset", "Mul", []string{bd.iter, chunk}), one})
	bd.starts, bd.ends = start, b.Op(p+"/end", "Add", []string{start, width})
	return bd
}

// slice takes this iteration's chunk of a padded vector or of the rows.
func (bd *body) slice(name, v string) string {
	b := bd.c.b
	return b.Op(bd.c.prefix+"/loop/"+name, "Slice", []string{v, bd.starts, bd.ends, b.Ints(bd.c.prefix+"/loop/"+name+"/axes", 0)})
}

// out declares a scan output of the body.
func (bd *body) out(v string, dt ir.DType, dims ...ir.Dim) {
	bd.outs = append(bd.outs, &ir.ValueInfo{Name: v, Type: ir.TensorType(dt, dims...)})
}

// close moves the body's nodes into a Loop over the chunks and returns the
// Loop's outputs: each body output stacked to [chunks, ·].
func (bd *body) close() ([]string, error) {
	c := bd.c
	b, p := c.b, c.prefix+"/loop"
	condOut := b.Op(p+"/cond/Identity", "Identity", []string{bd.cond})
	g := c.s.Model.Graph
	nodes := append([]*ir.Node(nil), g.Nodes[bd.start:]...)
	g.Nodes = g.Nodes[:bd.start]
	bg := &ir.Graph{
		Name: c.prefix + "/chunk",
		Inputs: []*ir.ValueInfo{
			{Name: bd.iter, Type: ir.TensorType(ir.Int64)},
			{Name: bd.cond, Type: ir.TensorType(ir.Bool)},
		},
		Outputs: append([]*ir.ValueInfo{{Name: condOut, Type: ir.TensorType(ir.Bool)}}, bd.outs...),
		Nodes:   nodes,
	}
	attr, err := ir.AttrGraph("body", bg)
	if err != nil {
		return nil, fmt.Errorf("passes: loss head: %w", err)
	}
	return b.OpN(p, "Loop", []string{c.trips, ""}, len(bd.outs), attr), nil
}

// ifOp adds to the body an If on cond whose branches are the nodes that
// then and els build (through the main builder, as the body's own) and
// return one value of type t each.
func (bd *body) ifOp(name, cond string, t *ir.Type, then, els func() string) (string, error) {
	one := func(f func() string) func() []string { return func() []string { return []string{f()} } }
	outs, err := bd.ifOpN(name, cond, []*ir.Type{t}, one(then), one(els))
	if err != nil {
		return "", err
	}
	return outs[0], nil
}

// ifOpN is ifOp for branches that return len(types) values.
func (bd *body) ifOpN(name, cond string, types []*ir.Type, then, els func() []string) ([]string, error) {
	c := bd.c
	g := c.s.Model.Graph
	branch := func(attr, suffix string, build func() []string) (*onnxpb.AttributeProto, error) {
		start := len(g.Nodes)
		outs := build()
		bg := &ir.Graph{Name: c.prefix + "/loop/" + name + "/" + suffix, Nodes: append([]*ir.Node(nil), g.Nodes[start:]...)}
		for i, o := range outs {
			bg.Outputs = append(bg.Outputs, &ir.ValueInfo{Name: o, Type: types[i].Clone()})
		}
		g.Nodes = g.Nodes[:start]
		return ir.AttrGraph(attr, bg)
	}
	ta, err := branch("then_branch", "then", then)
	if err != nil {
		return nil, fmt.Errorf("passes: loss head: %w", err)
	}
	ea, err := branch("else_branch", "else", els)
	if err != nil {
		return nil, fmt.Errorf("passes: loss head: %w", err)
	}
	return c.b.OpN(c.prefix+"/loop/"+name+"/If", "If", []string{cond}, len(types), ta, ea), nil
}

// logits projects a chunk of rows onto the vocabulary, in the head dtype.
func (bd *body) logits(rows string) string {
	c := bd.c
	b, p := c.b, c.prefix+"/loop/logits"
	l := rows
	switch {
	case c.p.w == "":
	case c.p.wT:
		l = b.Op(p+"/Gemm", "Gemm", []string{rows, c.p.w}, ir.AttrInt("transB", 1))
	default:
		l = b.Op(p+"/MatMul", "MatMul", []string{rows, c.p.w})
	}
	if c.p.dt != c.dt {
		l = castTo(b, p+"/Cast", l, c.dt)
	}
	return l
}

// backProject maps dlogits [chunk, vocab] back onto the rows.
func (bd *body) backProject(dlogits string) string {
	c := bd.c
	b, p := c.b, c.prefix+"/loop/drows"
	if c.p.dt != c.dt {
		dlogits = castTo(b, p+"/Cast", dlogits, c.p.dt)
	}
	switch {
	case c.p.w == "":
		return dlogits
	case c.p.wT:
		return b.Op(p+"/MatMul", "MatMul", []string{dlogits, c.p.w})
	default:
		return b.Op(p+"/Gemm", "Gemm", []string{dlogits, c.p.w}, ir.AttrInt("transB", 1))
	}
}

// probsProduct says whether the GRPO head may multiply p itself by the
// lm_head's weight when entropy_coeff is 0 (GRPOHead): a projection whose
// GEMM runs in the head's float32 or float64, and stays there (pass
// Precision would lower it).
func (bd *body) probsProduct() bool {
	c := bd.c
	lowered := c.s.Opts.Precision == ir.Float16 || c.s.Opts.Precision == ir.BFloat16
	return !lowered && c.p.w != "" && c.p.dt == c.dt && (c.dt == ir.Float32 || c.dt == ir.Float64)
}

// addAtTarget adds d [chunk, 1] to soft [chunk, vocab] at each row's
// target (tgt1 [chunk, 1]): gathered, added and written back, no one-hot
// tensor and no scatter reduction.
func (bd *body) addAtTarget(soft, tgt1, d string) string {
	b, p := bd.c.b, bd.c.prefix+"/loop/grad"
	at := b.Op(p+"/target/Gather", "GatherElements", []string{soft, tgt1}, ir.AttrInt("axis", 1))
	return b.Op(p+"/dlogits", "ScatterElements", []string{soft, tgt1, b.Op(p+"/target/Add", "Add", []string{at, d})},
		ir.AttrInt("axis", 1))
}

// logSoftmax returns log-softmax, the target's log-prob [chunk] and the
// target ids as [chunk, 1].
func (bd *body) logSoftmax(logits, target string) (lsm, lp, tgt1 string) {
	b, p := bd.c.b, bd.c.prefix+"/loop"
	lsm = b.Op(p+"/LogSoftmax", "LogSoftmax", []string{logits}, ir.AttrInt("axis", -1))
	tgt1 = b.Op(p+"/target/Unsqueeze", "Unsqueeze", []string{target, b.Ints(p+"/target/axes", 1)})
	g := b.Op(p+"/GatherElements", "GatherElements", []string{lsm, tgt1}, ir.AttrInt("axis", 1))
	lp = b.Op(p+"/lp", "Squeeze", []string{g, b.Ints(p+"/lp/axes", 1)})
	return lsm, lp, tgt1
}

// entropy is −Σ p·log p per row, with p = exp(lsm); plp is p·log p.
func (bd *body) entropy(probs, lsm string) (h, plp string) {
	b, p := bd.c.b, bd.c.prefix+"/loop/entropy"
	plp = b.Op(p+"/Mul", "Mul", []string{probs, lsm})
	sum := b.Op(p+"/ReduceSum", "ReduceSum", []string{plp, b.Ints(p+"/axes", 1)}, ir.AttrInt("keepdims", 0))
	return b.Op(p+"/Neg", "Neg", []string{sum}), plp
}

// scatter puts the n selected entries of a stacked [chunks, chunk] output
// back at their [b, s] positions, zeros elsewhere.
func (c *chunked) scatter(name, stacked string) string {
	b, p := c.b, c.prefix+"/out/"+name
	flat := b.Op(p+"/flat", "Reshape", []string{stacked, b.Ints(p+"/shape", -1)})
	sel := b.Op(p+"/Slice", "Slice", []string{flat, b.Ints(p+"/start", 0), c.n, b.Ints(p+"/axes", 0)})
	tflat := b.Op(p+"/target/flat", "Reshape", []string{c.target, b.Ints(p+"/target/shape", -1)})
	zeros := b.Op(p+"/zeros", "ConstantOfShape", []string{b.Op(p+"/Shape", "Shape", []string{tflat})},
		ir.AttrTensor("value", ir.NewTensorF64("value", []int64{1}, []float64{0}).As(c.dt)))
	full := b.Op(p+"/ScatterND", "ScatterND", []string{zeros, c.idx2, sel})
	return b.Op(p+"/Reshape", "Reshape", []string{full, b.Op(p+"/ids/Shape", "Shape", []string{"input_ids"})})
}

// scatterRows is scatter for the stacked [chunks, chunk, ·] row gradients:
// the gradient with respect to x, zero on the rows nobody selected.
func (c *chunked) scatterRows(stacked string) string {
	b, p := c.b, c.prefix+"/out/drows"
	flat := b.Op(p+"/Flatten", "Flatten", []string{stacked}, ir.AttrInt("axis", 2))
	sel := b.Op(p+"/Slice", "Slice", []string{flat, b.Ints(p+"/start", 0), c.n, b.Ints(p+"/axes", 0)})
	zeros := b.Op(p+"/zeros", "ConstantOfShape", []string{b.Op(p+"/Shape", "Shape", []string{c.rows})},
		ir.AttrTensor("value", ir.NewTensorF64("value", []int64{1}, []float64{0}).As(c.p.dt)))
	full := b.Op(p+"/ScatterND", "ScatterND", []string{zeros, c.idx2, sel})
	if !c.p.flatten {
		return full
	}
	return b.Op(p+"/Reshape", "Reshape", []string{full, b.Op(p+"/x/Shape", "Shape", []string{c.p.x})})
}

func (c *chunked) seqType() *ir.Type {
	return ir.TensorType(c.dt, c.s.Model.Graph.Input("input_ids").Type.Dims...)
}

// LogprobHead replaces the graph's outputs with the per-token log-prob of
// the next token, [batch, seq], 0 where there is no next token or where it
// or the position is padding (attention_mask 0). With Options.
// LogprobsEntropy it adds the entropy of the next-token distribution, same
// layout. Logits are computed in chunks of Options.HeadChunk positions
// and only at those positions: no [batch, seq, vocab] tensor exists.
func LogprobHead(s *State) error {
	p, err := findProjection(s.Model.Graph)
	if err != nil {
		return err
	}
	c := newChunked(s, p, "/head")
	b, g := c.b, s.Model.Graph
	sel := c.notLast()
	if g.Input("attention_mask") != nil {
		// Positions whose token and next token are real.
		m := castTo(b, "/head/mask/Cast", "attention_mask", ir.Bool)
		next := b.Op("/head/mask/next/Slice", "Slice", []string{"attention_mask", b.Ints("/head/mask/next/starts", 1),
			b.Ints("/head/mask/next/ends", math.MaxInt64), b.Ints("/head/mask/next/axes", 1)})
		nm := castTo(b, "/head/mask/next/Cast", b.Op("/head/mask/next/Pad", "Pad", []string{next, c.lastPad()}), ir.Bool)
		sel = b.Op("/head/select/And", "And", []string{b.Op("/head/mask/And", "And", []string{m, nm}), sel})
	}
	c.selectRows(sel)
	rows, target := c.gatherRows(), c.gather("target", c.target)

	bd := c.openBody()
	lsm, lp, _ := bd.logSoftmax(bd.logits(bd.slice("rows", rows)), bd.slice("target", target))
	bd.out(lp, c.dt, ir.Dim{Value: c.chunk})
	if s.Opts.LogprobsEntropy {
		probs := b.Op("/head/loop/softmax/Exp", "Exp", []string{lsm})
		h, _ := bd.entropy(probs, lsm)
		bd.out(h, c.dt, ir.Dim{Value: c.chunk})
	}
	outs, err := bd.close()
	if err != nil {
		return err
	}
	b.Add(&ir.Node{Name: "/head/logprobs", OpType: "Identity", Inputs: []string{c.scatter("logprobs", outs[0])}, Outputs: []string{LogprobsOutput}})
	g.Outputs = []*ir.ValueInfo{
		{Name: LogprobsOutput, Type: c.seqType(), Doc: "log p(input_ids[t+1] | ≤ t); 0 at the last position and where t or t+1 is padding"},
	}
	if s.Opts.LogprobsEntropy {
		b.Add(&ir.Node{Name: "/head/entropy", OpType: "Identity", Inputs: []string{c.scatter("entropy", outs[1])}, Outputs: []string{EntropyOutput}})
		g.Outputs = append(g.Outputs, &ir.ValueInfo{Name: EntropyOutput, Type: c.seqType(),
			Doc: "entropy of the next-token distribution at t; 0 where logprobs is 0 by construction"})
	}
	return ir.TopoSort(g)
}

// GRPOHead adds the GRPO loss (DESIGN.md §6) and its gradient with respect
// to the lm_head's input, seeding the autodiff:
//
//	ratio = exp(lp − old)
//	pg    = max(−A·ratio, −A·clip(ratio, 1−clip_low, 1+clip_high))
//	k3    = clamp(exp(ref − lp) − (ref − lp) − 1, −10, 10)
//	H     = −Σ_v p_v·log p_v, the entropy of the next-token distribution
//	loss  = Σ w·(pg + kl_coef·k3 − entropy_coeff·H)
//
// Only positions with w ≠ 0 (and a next token) are computed: their rows
// are gathered and projected onto the vocabulary in chunks of
// Options.HeadChunk inside a Loop, so no [batch, seq, vocab] tensor exists
// and masked positions (prompt, observations, padding) cost nothing and
// cannot make the gradient non-finite, whatever values they carry.
//
// The gradient is written in closed form per chunk: dloss/dlp = w·(−A·ratio·
// [not clipped] + kl_coef·(1 − exp(ref − lp))·[k3 within the clamp]),
// dloss/dH = −entropy_coeff·w, and with dH/dz = −p·(log p + H),
// dlogits = dlp·(onehot(target) − p) − dH·p·(log p + H), mapped back onto
// the rows through the lm_head's weight; with entropy_coeff = 0 (dH = 0)
// and a float32 or float64 GEMM, as −dlp·((p − onehot)·W), the entropy
// then read off the same product.
func GRPOHead(s *State) error {
	p, err := findProjection(s.Model.Graph)
	if err != nil {
		return err
	}
	c := newChunked(s, p, "/grpo")
	g, b, dt := s.Model.Graph, c.b, c.dt
	seq := c.seqType()
	scalar := ir.TensorType(dt)
	for _, in := range []*ir.ValueInfo{
		{Name: TokenWeightsInput, Type: seq, Doc: "per-token loss weight: the mask (0 on prompt and observation tokens) times the aggregation factor; positions with 0 are not computed"},
		{Name: AdvantagesInput, Type: seq.Clone(), Doc: "per-token advantage"},
		{Name: OldLogprobsInput, Type: seq.Clone(), Doc: "log-probs of the sampling policy"},
		{Name: RefLogprobsInput, Type: seq.Clone(), Doc: "log-probs of the frozen base (adapters off)"},
		{Name: ClipLowInput, Type: scalar, Doc: "ε_low of the clipped ratio"},
		{Name: ClipHighInput, Type: scalar.Clone(), Doc: "ε_high of the clipped ratio"},
		{Name: KLCoefInput, Type: scalar.Clone(), Doc: "coefficient of the k3 KL to the base"},
		{Name: EntropyCoefInput, Type: scalar.Clone(), Doc: "coefficient of the entropy bonus: loss −= entropy_coeff·Σ w·H"},
	} {
		b.Reserve(in.Name)
		g.Inputs = append(g.Inputs, in)
	}
	// float16's smallest step is 6e-8: the seeds w·dlp·p of a token-mean
	// loss over thousands of tokens fall below it and the backward through
	// a float16 backbone loses most of the gradient. Float16 graphs take a
	// loss scale that multiplies the seeds (the loss and its statistics
	// stay unscaled); autodiff divides the adapters' gradients by it.
	wGrad := ""
	if s.Opts.Precision == ir.Float16 {
		b.Reserve(LossScaleInput)
		g.Inputs = append(g.Inputs, &ir.ValueInfo{Name: LossScaleInput, Type: scalar.Clone(),
			Doc: "loss scale of the float16 backward: the gradient seeds are multiplied by it, the adapters' gradients divided (1: none)"})
		wGrad = LossScaleInput
	}
	one := b.Scalar("/grpo/one", dt, 1)
	zero := b.Scalar("/grpo/zero", dt, 0)
	sel := b.Op("/grpo/select/And", "And", []string{
		b.Op("/grpo/select/weighted", "Not", []string{b.Op("/grpo/select/Equal", "Equal", []string{TokenWeightsInput, zero})}),
		c.notLast()})
	c.selectRows(sel)
	rows, target := c.gatherRows(), c.gather("target", c.target)
	w, adv := c.gather("w", TokenWeightsInput), c.gather("adv", AdvantagesInput)
	old, ref := c.gather("old", OldLogprobsInput), c.gather("ref", RefLogprobsInput)
	// Scalars, outside the body.
	lo := b.Op("/grpo/clip/lo", "Sub", []string{one, ClipLowInput})
	hi := b.Op("/grpo/clip/hi", "Add", []string{one, ClipHighInput})
	negEnt := b.Op("/grpo/entropy/coef/Neg", "Neg", []string{EntropyCoefInput})
	noEntropy := b.Op("/grpo/entropy/coef/zero", "Equal", []string{EntropyCoefInput, zero})
	klLo, klHi := b.Scalar("/grpo/kl/lo", dt, -klClamp), b.Scalar("/grpo/kl/hi", dt, klClamp)

	bd := c.openBody()
	op := func(name, opType string, ins ...string) string { return b.Op("/grpo/loop/"+name, opType, ins) }
	rowsC, targetC := bd.slice("rows", rows), bd.slice("target", target)
	logits := bd.logits(rowsC)
	lsm, lp, tgt1 := bd.logSoftmax(logits, targetC)
	wc, advc := bd.slice("w", w), bd.slice("adv", adv)
	oldc, refc := bd.slice("old", old), bd.slice("ref", ref)
	active := op("active", "Not", op("active/Equal", "Equal", wc, zero))
	wg := wc // the weights of the gradient seeds
	if wGrad != "" {
		wg = op("grad/w/scaled", "Mul", wc, wGrad)
	}

	ratio := op("ratio/Exp", "Exp", op("ratio/Sub", "Sub", lp, oldc))
	clipped := op("clip/Min", "Min", op("clip/Max", "Max", ratio, lo), hi)
	negA := op("pg/NegA", "Neg", advc)
	pg1 := op("pg/unclipped", "Mul", negA, ratio)
	pg2 := op("pg/clipped", "Mul", negA, clipped)
	pg := op("pg/Max", "Max", pg1, pg2)
	isClipped := op("pg/Greater", "Greater", pg2, pg1)
	d := op("kl/diff", "Sub", refc, lp)
	ed := op("kl/Exp", "Exp", d)
	k3raw := op("kl/k3", "Sub", op("kl/Sub", "Sub", ed, d), one)
	k3 := op("kl/clamp/Min", "Min", op("kl/clamp/Max", "Max", k3raw, klLo), klHi)
	inClamp := op("kl/within", "LessOrEqual", k3raw, klHi)
	// Closed-form gradients with respect to lp and H.
	dpg := op("grad/dpg", "Where", isClipped, zero, op("grad/dpg/raw", "Mul", negA, ratio))
	dkl := op("grad/dkl", "Where", inClamp, op("grad/dkl/raw", "Sub", one, ed), zero)
	dlp := op("grad/dlp", "Where", active,
		op("grad/dlp/w", "Mul", wg, op("grad/dlp/sum", "Add", dpg, op("grad/dlp/kl", "Mul", KLCoefInput, dkl))), zero)
	dH := op("grad/dH", "Where", active, op("grad/dH/w", "Mul", negEnt, wg), zero)
	u := func(name, v string) string {
		return b.Op("/grpo/loop/"+name+"/Unsqueeze", "Unsqueeze", []string{v, b.Ints("/grpo/loop/"+name+"/axes", 1)})
	}
	dlp1, dH1 := u("dlp", dlp), u("dH", dH)
	// dlogits = −p·(dlp + dH·(lsm + H)) = p·a + (p·lsm)·e with the per-row
	// factors a = −(dlp + dH·H) and e = −dH, plus dlp at the target
	// (gathered, added and written back: no one-hot tensor, no scatter
	// reduction). The vocabulary-wide passes are two products and their
	// sum, p·lsm being the entropy's.
	factor := func(ent string) string {
		return op("grad/a", "Neg", op("grad/a/sum", "Add", dlp1, op("grad/a/entropy", "Mul", dH1, u("H", ent))))
	}
	mix := func(probs, plp, a string) string {
		return op("grad/p*a+plp*e", "Add", op("grad/p*a", "Mul", probs, a), op("grad/plp*e", "Mul", plp, op("grad/e", "Neg", dH1)))
	}
	ch := ir.Dim{Value: c.chunk}
	vocabT, rowT := ir.TensorType(dt, ch, ir.Dim{Value: -1}), ir.TensorType(dt, ch)
	var ent, drows string
	if !bd.probsProduct() {
		// With entropy_coeff = 0, dH is 0 and one product remains: an If
		// skips the other two.
		probs := op("softmax/Exp", "Exp", lsm)
		var plp string
		ent, plp = bd.entropy(probs, lsm)
		a := factor(ent)
		soft, err := bd.ifOp("grad/p*a", noEntropy, vocabT,
			func() string { return op("grad/p*a/only", "Mul", probs, a) },
			func() string { return mix(probs, plp, a) })
		if err != nil {
			return err
		}
		drows = bd.backProject(bd.addAtTarget(soft, tgt1, dlp1))
	} else {
		// With entropy_coeff = 0, a = −dlp and dlogits = a·(p − onehot):
		// the GEMM takes p − onehot (1 subtracted at the target, in place)
		// and a scales its [chunk, hidden] product G; the entropy comes
		// from G too, H = lse − Σ p·logits = −lp − rowsum(rows·G) (the
		// target's logit is rows·W[target]). The one vocabulary-wide pass
		// is the Exp. Only in float32 and float64 (probsProduct): G is a
		// difference of nearly equal terms where p_target → 1, the
		// absolute rounding autograd's dlp·(p − onehot) has as well.
		// Both branches return [p or dlogits without the target term, H];
		// H is known here only with the entropy term (0·lp holds its place).
		gemmIn, err := bd.ifOpN("grad/dlogits", noEntropy, []*ir.Type{vocabT, rowT},
			func() []string { return []string{op("grad/p/Exp", "Exp", lsm), op("grad/p/H", "Mul", lp, zero)} },
			func() []string {
				probs := op("softmax/Exp", "Exp", lsm)
				h, plp := bd.entropy(probs, lsm)
				return []string{mix(probs, plp, factor(h)), h}
			})
		if err != nil {
			return err
		}
		// The target's term after the If: here ScatterElements writes in
		// place, inside a branch it copied the [chunk, vocab] tensor.
		atTarget := op("grad/target/term", "Where", noEntropy, b.Scalar("/grpo/minus_one", dt, -1), dlp1)
		gm := bd.backProject(bd.addAtTarget(gemmIn[0], tgt1, atTarget))
		outs, err := bd.ifOpN("grad/rows", noEntropy, []*ir.Type{rowT, ir.TensorType(p.dt, ch, ir.Dim{Value: -1})},
			func() []string {
				pz := b.Op("/grpo/loop/H/rows*G/sum", "ReduceSum", []string{op("H/rows*G", "Mul", rowsC, gm), b.Ints("/grpo/loop/H/axes", 1)},
					ir.AttrInt("keepdims", 0))
				// A difference of terms of the logits' size: its absolute
				// error is about one float32 step at |logit| (7.6e-6 at
				// 64–128), so a near-zero entropy can come out slightly
				// negative; it is clamped at 0. Only the reported
				// entropy: this branch's gradient does not use it.
				h := op("H/clamp", "Max", op("H/-lp-sum", "Sub", op("H/-lp", "Neg", lp), pz), zero)
				return []string{h, op("grad/rows/a*G", "Mul", gm, op("grad/rows/a", "Neg", dlp1))}
			},
			func() []string {
				return []string{op("H/full", "Identity", gemmIn[1]), op("grad/rows/full", "Identity", gm)}
			})
		if err != nil {
			return err
		}
		ent, drows = outs[0], outs[1]
	}
	perTok := op("loss/token", "Add", op("loss/pgkl", "Add", pg, op("loss/kl", "Mul", KLCoefInput, k3)),
		op("loss/entropy", "Mul", negEnt, ent))
	// Where, not a product with w: padding rows carry w = 0 and must give
	// exactly 0, never 0·∞.
	tokLoss := op("loss/weighted", "Where", active, op("loss/w", "Mul", wc, perTok), zero)

	for _, v := range []string{lp, ent, k3, castTo(b, "/grpo/loop/clipped/Cast", isClipped, dt), ratio, tokLoss} {
		bd.out(v, dt, ch)
	}
	bd.out(drows, p.dt, ch, ir.Dim{Value: -1})
	outs, err := bd.close()
	if err != nil {
		return err
	}
	b.Add(&ir.Node{Name: "/grpo/loss", OpType: "ReduceSum", Inputs: []string{outs[5]}, Outputs: []string{LossOutput},
		Attrs: []*onnxpb.AttributeProto{ir.AttrInt("keepdims", 0)}})
	g.Outputs = []*ir.ValueInfo{{Name: LossOutput, Type: ir.TensorType(dt), Doc: "Σ w·(pg + kl_coef·k3 − entropy_coeff·H)"}}
	for i, o := range []struct{ name, doc string }{
		{LogprobsOutput, "log p(input_ids[t+1] | ≤ t) under the current adapters; 0 where token_weights is 0"},
		{EntropyOutput, "entropy of the next-token distribution; 0 where token_weights is 0"},
		{KLOutput, "per-token k3 KL estimate to the base, clamped to [−10, 10]; 0 where token_weights is 0"},
		{ClippedOutput, "1 where the clipped surrogate was selected"},
		{RatioOutput, "exp(logprobs − old_logprobs); 0 where token_weights is 0"},
	} {
		b.Add(&ir.Node{Name: "/grpo/out/" + o.name, OpType: "Identity", Inputs: []string{c.scatter(o.name, outs[i])}, Outputs: []string{o.name}})
		g.Outputs = append(g.Outputs, &ir.ValueInfo{Name: o.name, Type: seq.Clone(), Doc: o.doc})
	}
	s.Seeds = map[string]string{p.x: c.scatterRows(outs[6])}
	return ir.TopoSort(g)
}

func castTo(b *ir.Builder, name, v string, dt ir.DType) string {
	return b.Op(name, "Cast", []string{v}, ir.AttrInt("to", int64(dt)))
}
