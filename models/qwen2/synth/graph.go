package synth

import (
	"math"
	"strconv"

	"github.com/dartc/dartc/ir/onnxpb"
	"github.com/dartc/dartc/models/qwen2"
	"google.golang.org/protobuf/proto"
)

// Opset and IR version of every synthesized model (opset 17 pairs with IR 8).
const (
	Opset     = 17
	IRVersion = 8
)

// weightTensor is an initializer whose bytes are filled when the model is
// written: the values of param, transposed to [in, out] when transpose is set.
type weightTensor struct {
	proto     *onnxpb.TensorProto
	param     string
	transpose bool
	rows      int // the param's first dim (out) when transpose is set
	cols      int
	numel     int
}

// builder emits one Qwen2 decoder graph.
type builder struct {
	cfg     qwen2.Config
	opts    Options
	e       *emitter
	elem    onnxpb.TensorProto_DataType
	tensors []*weightTensor
	byKey   map[string]string // param name (+"^T") → initializer name
	anon    int               // next onnx::MatMul_N suffix
}

// build returns the model (initializers without data) and its weight tensors.
func build(cfg qwen2.Config, opts Options) (*onnxpb.ModelProto, []*weightTensor) {
	elem := opts.DType.elem()
	b := &builder{cfg: cfg, opts: opts, e: newEmitter(opts.LinearForm, elem), elem: elem,
		byKey: map[string]string{}, anon: 1000}
	b.decoder()
	g := b.e.graph
	// Weights first, as exporters list them, then the dynamo constants.
	var inits []*onnxpb.TensorProto
	for _, t := range b.tensors {
		inits = append(inits, t.proto)
	}
	g.Initializer = append(inits, g.Initializer...)
	return &onnxpb.ModelProto{
		IrVersion:    proto.Int64(IRVersion),
		OpsetImport:  []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(Opset)}},
		ProducerName: proto.String(producer),
		DocString: proto.String("Qwen2-shaped decoder (" + cfg.Name + ", " + opts.LinearForm.String() +
			" linear form, " + opts.DType.String() + ") synthesized by dartc with seeded weights"),
		Graph: g,
	}, b.tensors
}

// weight returns the initializer holding param, declaring it on first use.
func (b *builder) weight(param string, shape []int, transpose bool) string {
	key := param
	if transpose {
		key += "^T"
	}
	if name, ok := b.byKey[key]; ok {
		return name
	}
	name := param
	dims := []int64{}
	for _, d := range shape {
		dims = append(dims, int64(d))
	}
	t := &weightTensor{param: param, transpose: transpose, numel: numel(shape)}
	if transpose {
		name = "onnx::MatMul_" + strconv.Itoa(b.anon)
		b.anon++
		dims = []int64{dims[1], dims[0]}
		t.rows, t.cols = shape[0], shape[1]
	}
	t.proto = &onnxpb.TensorProto{Name: proto.String(name), Dims: dims, DataType: proto.Int32(int32(b.elem))}
	b.tensors = append(b.tensors, t)
	b.byKey[key] = name
	return name
}

func (b *builder) decoder() {
	c, e := b.cfg, b.e
	g := e.graph
	total := "sequence_length"
	if b.opts.KVCache {
		total = "past_sequence_length + sequence_length"
	}
	g.Input = append(g.Input,
		valueInfo("input_ids", onnxpb.TensorProto_INT64, "batch_size", "sequence_length"),
		valueInfo("attention_mask", onnxpb.TensorProto_INT64, "batch_size", total),
		valueInfo("position_ids", onnxpb.TensorProto_INT64, "batch_size", "sequence_length"))
	g.Output = append(g.Output, valueInfo("logits", b.elem, "batch_size", "sequence_length", strconv.Itoa(c.Vocab)))
	if b.opts.KVCache {
		kvh, hd := strconv.Itoa(c.KVHeads), strconv.Itoa(c.HeadDim)
		for l := 0; l < c.Layers; l++ {
			for _, kv := range []string{"key", "value"} {
				g.Input = append(g.Input, valueInfo(pastName(l, kv), b.elem, "batch_size", kvh, "past_sequence_length", hd))
				g.Output = append(g.Output, valueInfo(presentName(l, kv), b.elem, "batch_size", kvh, total, hd))
			}
		}
	}

	embed := b.weight("model.embed_tokens.weight", []int{c.Vocab, c.Hidden}, false)
	e.push("model")
	e.push("embed_tokens")
	h := e.node("Gather", []string{embed, "input_ids"}, nil, "")
	e.pop()
	mask := b.attentionMask()
	cos, sin := b.rotary()
	for l := 0; l < c.Layers; l++ {
		h = b.layer(l, h, mask, cos, sin)
	}
	_, h = b.rmsNorm("norm", "model.norm.weight", h)
	e.pop()

	e.push("lm_head")
	head := "lm_head.weight"
	if c.TiedEmbed && b.opts.LinearForm != TorchScript {
		// The dynamo exporter and a Gemm export share the embedding matrix; the
		// TorchScript exporter folds its transpose into a separate copy.
		head = "model.embed_tokens.weight"
	}
	b.linearWeight(h, head, c.Hidden, c.Vocab, "", "logits")
	e.pop()
}

func pastName(l int, kv string) string    { return "past_key_values." + strconv.Itoa(l) + "." + kv }
func presentName(l int, kv string) string { return "present." + strconv.Itoa(l) + "." + kv }

// attentionMask builds the additive mask [batch, 1, seq, past+seq]: 0 where
// key j is visible from query i (j ≤ past+i and attention_mask[b, j] = 1),
// and the dtype's lowest finite value elsewhere, as Hugging Face does.
func (b *builder) attentionMask() string {
	e := b.e
	seqLen := e.node("Gather", []string{e.node("Shape", []string{"input_ids"}, nil, ""), e.scalarInt(1)}, attrs(attrInt("axis", 0)), "")
	total := e.node("Gather", []string{e.node("Shape", []string{"attention_mask"}, nil, ""), e.scalarInt(1)}, attrs(attrInt("axis", 0)), "")
	past := e.node("Sub", []string{total, seqLen}, nil, "")
	one := e.scalarInt(1)
	queryPos := e.node("Range", []string{past, total, one}, nil, "")
	keyPos := e.node("Range", []string{e.scalarInt(0), total, one}, nil, "")
	causal := e.node("LessOrEqual", []string{
		e.node("Unsqueeze", []string{keyPos, e.ints(0)}, nil, ""),
		e.node("Unsqueeze", []string{queryPos, e.ints(1)}, nil, ""),
	}, nil, "")
	causal = e.node("Unsqueeze", []string{causal, e.ints(0, 1)}, nil, "")
	padding := e.node("Cast", []string{"attention_mask"}, attrs(attrInt("to", int64(onnxpb.TensorProto_BOOL))), "")
	padding = e.node("Unsqueeze", []string{padding, e.ints(1, 2)}, nil, "")
	visible := e.node("And", []string{causal, padding}, nil, "")
	lowest := b.opts.DType.lowest()
	return e.node("Where", []string{visible, e.floats(nil, 0), e.floats(nil, lowest)}, nil, "")
}

// rotary computes cos and sin [batch, seq, head_dim] from position_ids as the
// export of Qwen2RotaryEmbedding does: (position × inv_freq) duplicated along
// the last axis, times attention scaling 1.
func (b *builder) rotary() (cos, sin string) {
	e, c := b.e, b.cfg
	e.push("rotary_emb")
	defer e.pop()
	half := c.HeadDim / 2
	inv := make([]float64, half)
	for i := range inv {
		inv[i] = 1 / math.Pow(c.RopeTheta, float64(2*i)/float64(c.HeadDim))
	}
	pos := e.node("Unsqueeze", []string{"position_ids", e.ints(2)}, nil, "")
	pos = e.node("Cast", []string{pos}, attrs(attrInt("to", int64(b.elem))), "")
	freqs := e.node("Mul", []string{pos, e.floats([]int64{int64(half)}, inv...)}, nil, "")
	angles := e.node("Concat", []string{freqs, freqs}, attrs(attrInt("axis", -1)), "")
	cos = e.node("Mul", []string{e.node("Cos", []string{angles}, nil, ""), e.floats(nil, 1)}, nil, "")
	sin = e.node("Mul", []string{e.node("Sin", []string{angles}, nil, ""), e.floats(nil, 1)}, nil, "")
	return cos, sin
}

// rmsNorm emits the export's RMSNorm sequence and returns the input after its
// Cast (the residual branch reads it) and the normalized output.
func (b *builder) rmsNorm(module, gamma, x string) (residual, y string) {
	e := b.e
	e.push(module)
	defer e.pop()
	to := attrs(attrInt("to", int64(b.elem)))
	xc := e.node("Cast", []string{x}, to, "")
	sq := e.node("Pow", []string{xc, e.floats(nil, 2)}, nil, "")
	mean := e.node("ReduceMean", []string{sq}, attrs(attrInts("axes", -1), attrInt("keepdims", 1)), "")
	v := e.node("Add", []string{mean, e.floats(nil, b.cfg.RMSEps)}, nil, "")
	r := e.node("Div", []string{e.floats(nil, 1), e.node("Sqrt", []string{v}, nil, "")}, nil, "")
	n := e.node("Cast", []string{e.node("Mul", []string{xc, r}, nil, "")}, to, "")
	w := b.weight(gamma, []int{b.cfg.Hidden}, false)
	return xc, e.node("Mul", []string{w, n}, nil, "")
}

// linear emits one target projection in the selected form.
func (b *builder) linear(x string, layer int, k qwen2.TargetKind) string {
	out, in := b.cfg.LinearShape(k)
	bias := ""
	if b.cfg.HasBias(k) {
		bias = b.weight(qwen2.ModulePath(layer, k)+".bias", []int{out}, false)
	}
	b.e.push(k.Module())
	defer b.e.pop()
	return b.linearWeight(x, qwen2.ModulePath(layer, k)+".weight", in, out, bias, "")
}

// linearWeight emits y = x·Wᵀ (+ bias) for the parameter W [out, in] in the
// current scope; out names the result when not empty.
func (b *builder) linearWeight(x, param string, in, outDim int, bias, out string) string {
	e := b.e
	shape := []int{outDim, in}
	switch b.opts.LinearForm {
	case Dynamo:
		var y string
		e.withFx("linear", func() {
			w := e.node("Transpose", []string{b.weight(param, shape, false)}, attrs(attrInts("perm", 1, 0)), "")
			if bias == "" {
				y = e.finish("MatMul", []string{x, w}, nil, out)
				return
			}
			mm := e.node("MatMul", []string{x, w}, nil, "")
			y = e.finish("Add", []string{mm, bias}, nil, out)
		})
		return y
	case Gemm:
		x2 := e.node("Reshape", []string{x, e.ints(-1, int64(in))}, attrs(attrInt("allowzero", 0)), "")
		ins := []string{x2, b.weight(param, shape, false)}
		if bias != "" {
			ins = append(ins, bias)
		}
		y := e.node("Gemm", ins, attrs(attrInt("transB", 1)), "")
		lead := e.node("Shape", []string{x}, attrs(attrInt("end", -1)), "")
		target := e.node("Concat", []string{lead, e.ints(int64(outDim))}, attrs(attrInt("axis", 0)), "")
		return e.node("Reshape", []string{y, target}, attrs(attrInt("allowzero", 0)), out)
	default:
		if bias == "" {
			return e.node("MatMul", []string{x, b.weight(param, shape, true)}, nil, out)
		}
		mm := e.node("MatMul", []string{x, b.weight(param, shape, true)}, nil, "")
		return e.node("Add", []string{bias, mm}, nil, out)
	}
}

// layer emits one decoder layer and returns the new residual stream.
func (b *builder) layer(l int, h, mask, cos, sin string) string {
	e, c := b.e, b.cfg
	p := "model.layers." + strconv.Itoa(l) + "."
	hd := int64(c.HeadDim)
	e.push("layers." + strconv.Itoa(l))
	defer e.pop()

	residual, x := b.rmsNorm("input_layernorm", p+"input_layernorm.weight", h)
	e.push("self_attn")
	heads := func(y string) string { // [b, s, n·hd] → [b, n, s, hd]
		y = e.node("Reshape", []string{y, e.ints(0, 0, -1, hd)}, attrs(attrInt("allowzero", 0)), "")
		return e.node("Transpose", []string{y}, attrs(attrInts("perm", 0, 2, 1, 3)), "")
	}
	q := heads(b.linear(x, l, qwen2.TargetQ))
	k := heads(b.linear(x, l, qwen2.TargetK))
	v := heads(b.linear(x, l, qwen2.TargetV))
	cos4 := e.node("Unsqueeze", []string{cos, e.ints(1)}, nil, "")
	sin4 := e.node("Unsqueeze", []string{sin, e.ints(1)}, nil, "")
	rope := func(t string) string { // t·cos + rotate_half(t)·sin
		a := e.node("Mul", []string{t, cos4}, nil, "")
		first := e.node("Slice", []string{t, e.ints(0), e.ints(hd / 2), e.ints(3), e.ints(1)}, nil, "")
		second := e.node("Slice", []string{t, e.ints(hd / 2), e.ints(math.MaxInt64), e.ints(3), e.ints(1)}, nil, "")
		rot := e.node("Concat", []string{e.node("Neg", []string{second}, nil, ""), first}, attrs(attrInt("axis", -1)), "")
		return e.node("Add", []string{a, e.node("Mul", []string{rot, sin4}, nil, "")}, nil, "")
	}
	q, k = rope(q), rope(k)
	if b.opts.KVCache {
		k = e.node("Concat", []string{pastName(l, "key"), k}, attrs(attrInt("axis", 2)), presentName(l, "key"))
		v = e.node("Concat", []string{pastName(l, "value"), v}, attrs(attrInt("axis", 2)), presentName(l, "value"))
	}
	if group := int64(c.Heads / c.KVHeads); group > 1 {
		repeat := func(t string) string { // [b, kv, t, hd] → [b, kv·group, t, hd]
			t = e.node("Unsqueeze", []string{t, e.ints(2)}, nil, "")
			t = e.node("Expand", []string{t, e.ints(1, 1, group, 1, 1)}, nil, "")
			return e.node("Reshape", []string{t, e.ints(0, int64(c.Heads), -1, hd)}, attrs(attrInt("allowzero", 0)), "")
		}
		k, v = repeat(k), repeat(v)
	}
	kt := e.node("Transpose", []string{k}, attrs(attrInts("perm", 0, 1, 3, 2)), "")
	scores := e.node("Mul", []string{e.node("MatMul", []string{q, kt}, nil, ""), e.floats(nil, 1/math.Sqrt(float64(hd)))}, nil, "")
	scores = e.node("Add", []string{scores, mask}, nil, "")
	probs := e.node("Softmax", []string{scores}, attrs(attrInt("axis", -1)), "")
	ctx := e.node("MatMul", []string{probs, v}, nil, "")
	ctx = e.node("Transpose", []string{ctx}, attrs(attrInts("perm", 0, 2, 1, 3)), "")
	ctx = e.node("Reshape", []string{ctx, e.ints(0, 0, -1)}, attrs(attrInt("allowzero", 0)), "")
	o := b.linear(ctx, l, qwen2.TargetO)
	e.pop()
	h = e.node("Add", []string{residual, o}, nil, "")

	residual, x = b.rmsNorm("post_attention_layernorm", p+"post_attention_layernorm.weight", h)
	e.push("mlp")
	gate := b.linear(x, l, qwen2.TargetGate)
	e.push("act_fn")
	act := e.node("Mul", []string{gate, e.node("Sigmoid", []string{gate}, nil, "")}, nil, "")
	e.pop()
	up := b.linear(x, l, qwen2.TargetUp)
	down := b.linear(e.node("Mul", []string{act, up}, nil, ""), l, qwen2.TargetDown)
	e.pop()
	return e.node("Add", []string{residual, down}, nil, "")
}
