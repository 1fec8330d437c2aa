package passes

import (
	"fmt"
	"math"

	"github.com/dartc/dartc/compiler/ir"
	"github.com/dartc/dartc/compiler/onnxpb"
)

// Names of the loss-head inputs and outputs (DESIGN.md §6).
const (
	TokenWeightsInput = "token_weights"
	AdvantagesInput   = "advantages"
	OldLogprobsInput  = "old_logprobs"
	RefLogprobsInput  = "ref_logprobs"
	ClipLowInput      = "clip_low"
	ClipHighInput     = "clip_high"
	KLCoefInput       = "kl_coef"

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

// HeadDType is the type of the loss head for a model: float64 for float64
// backbones (so gradient checks can run in double precision), float32
// otherwise.
func HeadDType(s *State) ir.DType {
	for _, in := range s.AdapterInputs {
		return in.Type.DType
	}
	return ir.Float32
}

// headBase holds the values both heads build from the full logits.
type headBase struct {
	dt      ir.DType
	logits  string // [b, s, V] in dt
	lsm     string // log-softmax of logits
	target  string // next token ids [b, s], 0 at the last position
	valid   string // [b, s] 1 where a next token exists, 0 at the last position
	lp      string // log-prob of the next token [b, s], 0 at the last position
	p       string // softmax [b, s, V], once built
	seqDims []ir.Dim
}

func buildHeadBase(s *State, prefix string) (*headBase, error) {
	g := s.Model.Graph
	out := g.Output(LogitsOutput)
	if out == nil || out.Type == nil || len(out.Type.Dims) != 3 {
		return nil, fmt.Errorf("passes: the graph has no logits [batch, seq, vocab] output for the loss head")
	}
	ids := g.Input("input_ids")
	b := s.Builder()
	h := &headBase{dt: HeadDType(s), seqDims: ids.Type.Dims}
	h.logits = LogitsOutput
	if out.Type.DType != h.dt {
		h.logits = b.Op(prefix+"/logits/Cast", "Cast", []string{LogitsOutput}, ir.AttrInt("to", int64(h.dt)))
	}
	h.lsm = b.Op(prefix+"/LogSoftmax", "LogSoftmax", []string{h.logits}, ir.AttrInt("axis", -1))
	next := b.Op(prefix+"/next/Slice", "Slice", []string{"input_ids", b.Ints(prefix+"/next/starts", 1),
		b.Ints(prefix+"/next/ends", math.MaxInt64), b.Ints(prefix+"/next/axes", 1)})
	pads := b.Ints(prefix+"/pads", 0, 0, 0, 1)
	h.target = b.Op(prefix+"/target/Pad", "Pad", []string{next, pads})
	ones := b.Op(prefix+"/valid/ConstantOfShape", "ConstantOfShape",
		[]string{b.Op(prefix+"/valid/Shape", "Shape", []string{next})},
		ir.AttrTensor("value", ir.NewTensorF64("value", []int64{1}, []float64{1}).As(h.dt)))
	h.valid = b.Op(prefix+"/valid/Pad", "Pad", []string{ones, pads})
	idx := unsqueezeLast(s, prefix+"/target/Unsqueeze", h.target)
	gathered := b.Op(prefix+"/GatherElements", "GatherElements", []string{h.lsm, idx}, ir.AttrInt("axis", -1))
	lp := b.Op(prefix+"/Squeeze", "Squeeze", []string{gathered, b.Ints(prefix+"/Squeeze/axes", -1)})
	h.lp = b.Op(prefix+"/logprobs/Mul", "Mul", []string{lp, h.valid})
	return h, nil
}

func (h *headBase) seqType() *ir.Type { return ir.TensorType(h.dt, h.seqDims...) }

// probs is softmax(logits) = exp(log-softmax), computed once per head.
func (h *headBase) probs(s *State, prefix string) string {
	if h.p == "" {
		h.p = s.Builder().Op(prefix+"/softmax/Exp", "Exp", []string{h.lsm})
	}
	return h.p
}

// entropy is −Σ p·log p over the vocabulary, per position.
func (h *headBase) entropy(s *State, prefix string) string {
	b := s.Builder()
	plp := b.Op(prefix+"/entropy/Mul", "Mul", []string{h.probs(s, prefix), h.lsm})
	sum := b.Op(prefix+"/entropy/ReduceSum", "ReduceSum", []string{plp, b.Ints(prefix+"/entropy/axes", -1)}, ir.AttrInt("keepdims", 0))
	return b.Op(prefix+"/entropy/Neg", "Neg", []string{sum})
}

// LogprobHead replaces the graph's outputs with the per-token log-prob of
// the next token and the entropy of the next-token distribution, both
// [batch, seq] with 0 at the last position.
func LogprobHead(s *State) error {
	h, err := buildHeadBase(s, "/head")
	if err != nil {
		return err
	}
	b := s.Builder()
	b.Add(&ir.Node{Name: "/head/logprobs", OpType: "Identity", Inputs: []string{h.lp}, Outputs: []string{LogprobsOutput}})
	ent := b.Op("/head/entropy/masked", "Mul", []string{h.entropy(s, "/head"), h.valid})
	b.Add(&ir.Node{Name: "/head/entropy", OpType: "Identity", Inputs: []string{ent}, Outputs: []string{EntropyOutput}})
	s.Model.Graph.Outputs = []*ir.ValueInfo{
		{Name: LogprobsOutput, Type: h.seqType(), Doc: "log p(input_ids[t+1] | ≤ t); 0 at the last position"},
		{Name: EntropyOutput, Type: h.seqType(), Doc: "entropy of the next-token distribution at t; 0 at the last position"},
	}
	return ir.TopoSort(s.Model.Graph)
}

// GRPOHead adds the GRPO loss (DESIGN.md §6) and its gradient with respect
// to the logits, seeding the autodiff:
//
//	ratio = exp(lp − old)
//	pg    = max(−A·ratio, −A·clip(ratio, 1−clip_low, 1+clip_high))
//	k3    = clamp(exp(ref − lp) − (ref − lp) − 1, −10, 10)
//	loss  = Σ w·(pg + kl_coef·k3)
//
// The gradient is written in closed form: dloss/dlp = w·(−A·ratio·[not
// clipped] + kl_coef·(1 − exp(ref − lp))·[k3 within the clamp]), and
// dlogits = dlp·(onehot(target) − softmax(logits)), the fused form of
// log-softmax + gather.
func GRPOHead(s *State) error {
	h, err := buildHeadBase(s, "/grpo")
	if err != nil {
		return err
	}
	g := s.Model.Graph
	b := s.Builder()
	dt := h.dt
	seq := h.seqType()
	scalar := ir.TensorType(dt)
	for _, in := range []*ir.ValueInfo{
		{Name: TokenWeightsInput, Type: seq, Doc: "per-token loss weight: the mask (0 on prompt and observation tokens) times the aggregation factor"},
		{Name: AdvantagesInput, Type: seq.Clone(), Doc: "per-token advantage"},
		{Name: OldLogprobsInput, Type: seq.Clone(), Doc: "log-probs of the sampling policy"},
		{Name: RefLogprobsInput, Type: seq.Clone(), Doc: "log-probs of the frozen base (adapters off)"},
		{Name: ClipLowInput, Type: scalar, Doc: "ε_low of the clipped ratio"},
		{Name: ClipHighInput, Type: scalar.Clone(), Doc: "ε_high of the clipped ratio"},
		{Name: KLCoefInput, Type: scalar.Clone(), Doc: "coefficient of the k3 KL to the base"},
	} {
		b.Reserve(in.Name)
		g.Inputs = append(g.Inputs, in)
	}
	one := b.Scalar("/grpo/one", dt, 1)
	op := func(name, opType string, ins ...string) string { return b.Op("/grpo/"+name, opType, ins) }

	ratio := op("ratio/Exp", "Exp", op("ratio/Sub", "Sub", h.lp, OldLogprobsInput))
	lo := op("clip/lo", "Sub", one, ClipLowInput)
	hi := op("clip/hi", "Add", one, ClipHighInput)
	clipped := op("clip/Min", "Min", op("clip/Max", "Max", ratio, lo), hi)
	negA := op("pg/NegA", "Neg", AdvantagesInput)
	pg1 := op("pg/unclipped", "Mul", negA, ratio)
	pg2 := op("pg/clipped", "Mul", negA, clipped)
	pg := op("pg/Max", "Max", pg1, pg2)
	isClipped := op("pg/Greater", "Greater", pg2, pg1)
	d := op("kl/diff", "Sub", RefLogprobsInput, h.lp)
	ed := op("kl/Exp", "Exp", d)
	k3raw := op("kl/k3", "Sub", op("kl/Sub", "Sub", ed, d), one)
	k3 := op("kl/clamp/Min", "Min", op("kl/clamp/Max", "Max", k3raw, b.Scalar("/grpo/kl/lo", dt, -klClamp)), b.Scalar("/grpo/kl/hi", dt, klClamp))
	inClamp := op("kl/within", "LessOrEqual", k3raw, b.Scalar("/grpo/kl/hi2", dt, klClamp))
	perTok := op("loss/token", "Add", pg, op("loss/kl", "Mul", KLCoefInput, k3))
	weighted := op("loss/weighted", "Mul", TokenWeightsInput, perTok)
	b.Add(&ir.Node{Name: "/grpo/loss", OpType: "ReduceSum", Inputs: []string{weighted}, Outputs: []string{LossOutput},
		Attrs: []*onnxpb.AttributeProto{ir.AttrInt("keepdims", 0)}})
	// Closed-form gradient of the loss with respect to lp.
	clippedF := castTo(b, "/grpo/clipped/Cast", isClipped, dt)
	dpg := op("grad/dpg", "Mul", op("grad/dpg/raw", "Mul", negA, ratio), op("grad/dpg/mask", "Sub", one, clippedF))
	dkl := op("grad/dkl", "Mul", op("grad/dkl/raw", "Sub", one, ed), castTo(b, "/grpo/grad/within", inClamp, dt))
	dlp := op("grad/dlp", "Mul", TokenWeightsInput,
		op("grad/dlp/sum", "Add", dpg, op("grad/dlp/kl", "Mul", KLCoefInput, dkl)))
	dlp = op("grad/dlp/valid", "Mul", dlp, h.valid)
	// dlogits = dlp·(onehot − softmax), written as −dlp·softmax with dlp
	// added at each target (ScatterElements): no one-hot [b, s, V] tensor.
	probs := h.probs(s, "/grpo")
	dlpU := unsqueezeLast(s, "/grpo/grad/dlp/Unsqueeze", dlp)
	dlogits := b.Op("/grpo/grad/dlogits", "ScatterElements", []string{
		op("grad/-dlp*softmax", "Mul", op("grad/-dlp", "Neg", dlpU), probs),
		unsqueezeLast(s, "/grpo/grad/target/Unsqueeze", h.target), dlpU},
		ir.AttrInt("axis", -1), ir.AttrString("reduction", "add"))
	docs := map[string]string{}
	for _, o := range []struct{ name, src, doc string }{
		{LogprobsOutput, h.lp, "log p(input_ids[t+1] | ≤ t) under the current adapters; 0 at the last position"},
		{EntropyOutput, op("entropy/masked", "Mul", h.entropy(s, "/grpo"), h.valid), "entropy of the next-token distribution"},
		{KLOutput, k3, "per-token k3 KL estimate to the base, clamped to [−10, 10]"},
		{ClippedOutput, clippedF, "1 where the clipped surrogate was selected"},
		{RatioOutput, op("ratio/masked", "Mul", ratio, h.valid), "exp(logprobs − old_logprobs)"},
	} {
		b.Add(&ir.Node{Name: "/grpo/out/" + o.name, OpType: "Identity", Inputs: []string{o.src}, Outputs: []string{o.name}})
		docs[o.name] = o.doc
	}
	logitsType := g.Output(LogitsOutput).Type
	g.Outputs = []*ir.ValueInfo{{Name: LossOutput, Type: ir.TensorType(dt), Doc: "Σ w·(pg + kl_coef·k3)"}}
	for _, name := range []string{LogprobsOutput, EntropyOutput, KLOutput, ClippedOutput, RatioOutput} {
		g.Outputs = append(g.Outputs, &ir.ValueInfo{Name: name, Type: seq.Clone(), Doc: docs[name]})
	}
	seedGrad := dlogits
	if logitsType.DType != dt {
		seedGrad = b.Op("/grpo/grad/dlogits/Cast", "Cast", []string{dlogits}, ir.AttrInt("to", int64(logitsType.DType)))
	}
	s.Seeds = map[string]string{LogitsOutput: seedGrad}
	return ir.TopoSort(g)
}

func castTo(b *ir.Builder, name, v string, dt ir.DType) string {
	return b.Op(name, "Cast", []string{v}, ir.AttrInt("to", int64(dt)))
}
