package passes

import (
	"errors"
	"fmt"

	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/ir/onnxpb"
)

// ErrBadOptimizerSpec wraps every refusal of BuildAdamW's parameter list.
var ErrBadOptimizerSpec = errors.New("passes: bad AdamW spec")

// AdamWParam is one tensor the optimizer updates: a graph input of adapters
// in train.onnx, with its gradient and its two moment buffers.
type AdamWParam struct {
	Name  string
	DType ir.DType // float32 or float64
	Dims  []int64
}

// DefaultAdamWOpset is the opset BuildAdamW uses when given 0.
const DefaultAdamWOpset = 17

// The opsets BuildAdamW accepts: every op it emits keeps one signature
// (ReduceSumSquare without axes, Pow with a float exponent) across them.
const (
	minAdamWOpset = 13
	maxAdamWOpset = 23
)

// The scalar inputs of adamw.onnx, rank-0 float32 whatever the params' type.
const (
	AdamWStep        = "step" // 1-based step number t, as a float
	AdamWLR          = "lr"
	AdamWBeta1       = "beta1"
	AdamWBeta2       = "beta2"
	AdamWEps         = "eps"
	AdamWWeightDecay = "weight_decay"
	AdamWMaxGradNorm = "max_grad_norm" // ≤ 0 disables clipping
	AdamWGradNorm    = "grad_norm"     // output: global L2 norm of the grads before clipping
)

var adamWScalars = []struct{ name, doc string }{
	{AdamWStep, "1-based step number t used in the bias corrections 1−β^t"},
	{AdamWLR, "learning rate"},
	{AdamWBeta1, "decay of the first moment m"},
	{AdamWBeta2, "decay of the second moment v"},
	{AdamWEps, "added to sqrt(v̂) in the denominator"},
	{AdamWWeightDecay, "decoupled weight decay: p ← p·(1 − lr·weight_decay) before the Adam step"},
	{AdamWMaxGradNorm, "global grad-norm clipping threshold; ≤ 0 disables clipping"},
}

// clipEps is the term torch.nn.utils.clip_grad_norm_ adds to the norm
// before dividing by it.
const clipEps = 1e-6

// AdamWGradName is the adamw.onnx input holding param p's gradient.
func AdamWGradName(p string) string { return "grad." + p }

// AdamWMName is the adamw.onnx input holding param p's first moment.
func AdamWMName(p string) string { return "m." + p }

// AdamWVName is the adamw.onnx input holding param p's second moment.
func AdamWVName(p string) string { return "v." + p }

// AdamWNewName is the adamw.onnx output holding param p after the step.
func AdamWNewName(p string) string { return "new." + p }

// AdamWNewMName is the adamw.onnx output holding p's updated first moment.
func AdamWNewMName(p string) string { return "new_m." + p }

// AdamWNewVName is the adamw.onnx output holding p's updated second moment.
func AdamWNewVName(p string) string { return "new_v." + p }

// adamWIONames lists every graph name param p introduces.
func adamWIONames(p string) []string {
	return []string{p, AdamWGradName(p), AdamWMName(p), AdamWVName(p), AdamWNewName(p), AdamWNewMName(p), AdamWNewVName(p)}
}

// BuildAdamW builds adamw.onnx: one AdamW step (PyTorch's torch.optim.AdamW,
// decoupled weight decay, bias correction) over every param, after global
// grad-norm clipping as torch.nn.utils.clip_grad_norm_ does it:
//
//	norm = sqrt(Σ_p Σ g²);  c = min(1, max_grad_norm/(norm + 1e-6)), or 1 when max_grad_norm ≤ 0
//	g' = c·g;  m' = β1·m + (1−β1)·g';  v' = β2·v + (1−β2)·g'²
//	p' = p·(1 − lr·wd) − (lr/(1−β1^t)) · m' / (sqrt(v')/sqrt(1−β2^t) + eps)
//
// For each param p the graph reads p, grad.p, m.p, v.p and writes new.p,
// new_m.p, new_v.p, all of p's type and shape; the hyper-parameters are
// rank-0 float32 inputs (AdamWStep …), and grad_norm is a float32 output.
// Float64 params are updated in float64 throughout (the scalars are cast
// up); the norm is summed in float64 when any param is float64. opset 0
// means DefaultAdamWOpset.
func BuildAdamW(params []AdamWParam, opset int64) (*ir.Model, error) {
	if opset == 0 {
		opset = DefaultAdamWOpset
	}
	if opset < minAdamWOpset || opset > maxAdamWOpset {
		return nil, fmt.Errorf("%w: opset %d is outside %d…%d (pass 0 for the default %d)",
			ErrBadOptimizerSpec, opset, minAdamWOpset, maxAdamWOpset, DefaultAdamWOpset)
	}
	if err := checkAdamWParams(params); err != nil {
		return nil, err
	}

	g := &ir.Graph{Name: "adamw", Doc: "dartc AdamW step with global grad-norm clipping"}
	b := ir.NewBuilder(g)
	for _, s := range adamWScalars {
		b.Reserve(s.name)
		g.Inputs = append(g.Inputs, &ir.ValueInfo{Name: s.name, Type: ir.TensorType(ir.Float32), Doc: s.doc})
	}
	b.Reserve(AdamWGradNorm)
	for _, p := range params {
		b.Reserve(adamWIONames(p.Name)...)
	}
	a := &adamWBuilder{b: b, hyper: map[ir.DType]*adamWHyper{}, ones: map[ir.DType]string{}}

	// Accumulate the squared norm in the widest param type.
	acc := ir.Float32
	for _, p := range params {
		if p.DType == ir.Float64 {
			acc = ir.Float64
		}
	}
	squares := make([]string, len(params))
	for i, p := range params {
		ty := ir.TensorType(p.DType, ir.Dims(p.Dims...)...)
		g.Inputs = append(g.Inputs,
			&ir.ValueInfo{Name: p.Name, Type: ty, Doc: "parameter before the step"},
			&ir.ValueInfo{Name: AdamWGradName(p.Name), Type: ty.Clone(), Doc: "gradient of the loss, before clipping"},
			&ir.ValueInfo{Name: AdamWMName(p.Name), Type: ty.Clone(), Doc: "first moment (zeros before step 1)"},
			&ir.ValueInfo{Name: AdamWVName(p.Name), Type: ty.Clone(), Doc: "second moment (zeros before step 1)"})
		prefix := "/adamw/" + p.Name
		sq := a.op(prefix+"/grad_sq_sum", "ReduceSumSquare", "Σ grad² of this param",
			[]string{AdamWGradName(p.Name)}, ir.AttrInt("keepdims", 0))
		squares[i] = a.cast(prefix+"/grad_sq_sum/Cast", sq, p.DType, acc)
	}

	// c = Where(max_grad_norm > 0, min(1, max_grad_norm/(norm+1e-6)), 1)
	total := a.op("/adamw/clip/sq_sum", "Sum", "Σ grad² over every param", squares)
	norm := a.op("/adamw/clip/norm", "Sqrt", "global L2 norm of the grads before clipping", []string{total})
	a.named("/adamw/clip/grad_norm", "Cast", "grad_norm output (float32)", []string{norm}, AdamWGradNorm,
		ir.AttrInt("to", int64(ir.Float32)))
	maxNorm := a.cast("/adamw/clip/max_grad_norm/Cast", AdamWMaxGradNorm, ir.Float32, acc)
	one := a.one("/adamw/clip/one", acc)
	ratio := a.op("/adamw/clip/ratio", "Div", "max_grad_norm / (norm + 1e-6)",
		[]string{maxNorm, a.op("/adamw/clip/norm_eps", "Add", "norm + 1e-6 (clip_grad_norm_'s guard)", []string{norm, b.Scalar("/adamw/clip/eps", acc, clipEps)})})
	capped := a.op("/adamw/clip/min", "Min", "clipping never scales grads up", []string{ratio, one})
	enabled := a.op("/adamw/clip/enabled", "Greater", "max_grad_norm > 0 turns clipping on",
		[]string{maxNorm, b.Scalar("/adamw/clip/zero", acc, 0)})
	coef := a.op("/adamw/clip/coef", "Where", "clip coefficient c", []string{enabled, capped, one})

	coefIn := map[ir.DType]string{acc: coef} // cast once per param type
	for _, p := range params {
		if _, ok := coefIn[p.DType]; !ok {
			coefIn[p.DType] = a.cast("/adamw/clip/coef/Cast_"+p.DType.String(), coef, acc, p.DType)
		}
		a.param(p, coefIn[p.DType])
		ty := ir.TensorType(p.DType, ir.Dims(p.Dims...)...)
		g.Outputs = append(g.Outputs,
			&ir.ValueInfo{Name: AdamWNewName(p.Name), Type: ty, Doc: "parameter after the step"},
			&ir.ValueInfo{Name: AdamWNewMName(p.Name), Type: ty.Clone(), Doc: "first moment after the step"},
			&ir.ValueInfo{Name: AdamWNewVName(p.Name), Type: ty.Clone(), Doc: "second moment after the step"})
	}
	g.Outputs = append(g.Outputs, &ir.ValueInfo{Name: AdamWGradNorm, Type: ir.TensorType(ir.Float32),
		Doc: "global L2 norm of the gradients before clipping"})
	if err := ir.TopoSort(g); err != nil {
		return nil, fmt.Errorf("passes: adamw graph: %w", err)
	}
	m := &ir.Model{
		IRVersion:    ir.IRVersionForOpset(opset),
		Opsets:       []ir.Opset{{Domain: "", Version: opset}},
		ProducerName: "dartc",
		Doc:          "dartc adamw graph: one AdamW step (decoupled weight decay, bias correction) after global grad-norm clipping",
		Graph:        g,
	}
	m.SetMetadata(CompiledMarker, "adamw")
	if err := ir.CheckModel(m); err != nil {
		return nil, fmt.Errorf("passes: adamw graph (a bug in BuildAdamW): %w", err)
	}
	return m, nil
}

func checkAdamWParams(params []AdamWParam) error {
	if len(params) == 0 {
		return fmt.Errorf("%w: no params to optimize (a compiled model needs at least one adapter tensor)", ErrBadOptimizerSpec)
	}
	// owner maps every graph input/output name to what introduced it, so a
	// param named like another's grad (or like "lr") is refused by name.
	owner := map[string]string{AdamWGradNorm: "the grad_norm output"}
	for _, s := range adamWScalars {
		owner[s.name] = "the scalar input " + s.name
	}
	for i, p := range params {
		if p.Name == "" {
			return fmt.Errorf("%w: param %d has no name", ErrBadOptimizerSpec, i)
		}
		if p.DType != ir.Float32 && p.DType != ir.Float64 {
			return fmt.Errorf("%w: param %q is %s: adapters and their optimizer state must be float32 or float64 (see AdapterDType)",
				ErrBadOptimizerSpec, p.Name, p.DType)
		}
		for _, d := range p.Dims {
			if d <= 0 {
				return fmt.Errorf("%w: param %q has dims %v: every dim must be a positive size", ErrBadOptimizerSpec, p.Name, p.Dims)
			}
		}
		for _, n := range adamWIONames(p.Name) {
			if prev, dup := owner[n]; dup {
				return fmt.Errorf("%w: param %q (number %d) needs the graph name %q, already taken by %s: param names must be unique and must not look like another param's grad./m./v./new. names",
					ErrBadOptimizerSpec, p.Name, i, n, prev)
			}
			owner[n] = fmt.Sprintf("param %q", p.Name)
		}
	}
	return nil
}

// adamWHyper holds the hyper-parameter scalars in one param type, built once
// per type.
type adamWHyper struct {
	beta1, oneMinusBeta1 string
	beta2, oneMinusBeta2 string
	eps                  string
	decay                string // 1 − lr·weight_decay
	stepSize             string // lr / (1 − β1^t)
	sqrtBC2              string // sqrt(1 − β2^t)
}

type adamWBuilder struct {
	b     *ir.Builder
	hyper map[ir.DType]*adamWHyper
	ones  map[ir.DType]string
}

// one is the constant 1 of type dt, one initializer per type: ONNX
// Runtime's ConstantSharing would merge duplicates, and a graph it changes
// runs every level-1 optimizer a second time at session creation.
func (a *adamWBuilder) one(name string, dt ir.DType) string {
	if v, ok := a.ones[dt]; ok {
		return v
	}
	a.ones[dt] = a.b.Scalar(name, dt, 1)
	return a.ones[dt]
}

// op appends a one-output node with a doc string.
func (a *adamWBuilder) op(name, opType, doc string, inputs []string, attrs ...*onnxpb.AttributeProto) string {
	out := a.b.Op(name, opType, inputs, attrs...)
	a.b.G.Nodes[len(a.b.G.Nodes)-1].Doc = doc
	return out
}

// named appends a node whose output is a graph output of the given name.
func (a *adamWBuilder) named(name, opType, doc string, inputs []string, output string, attrs ...*onnxpb.AttributeProto) {
	a.b.Add(&ir.Node{Name: name, OpType: opType, Inputs: inputs, Outputs: []string{output}, Attrs: attrs, Doc: doc})
}

// cast converts x from one float type to another, or returns it as is.
func (a *adamWBuilder) cast(name, x string, from, to ir.DType) string {
	if from == to {
		return x
	}
	return a.op(name, "Cast", "to "+to.String(), []string{x}, ir.AttrInt("to", int64(to)))
}

// hyperFor returns the scalars derived from the hyper-parameter inputs in
// type dt: cast once, shared by every param of that type.
func (a *adamWBuilder) hyperFor(dt ir.DType) *adamWHyper {
	if h, ok := a.hyper[dt]; ok {
		return h
	}
	p := "/adamw/hyper/" + dt.String()
	in := func(name string) string { return a.cast(p+"/"+name+"/Cast", name, ir.Float32, dt) }
	one := a.one(p+"/one", dt)
	lr, t := in(AdamWLR), in(AdamWStep)
	h := &adamWHyper{beta1: in(AdamWBeta1), beta2: in(AdamWBeta2), eps: in(AdamWEps)}
	h.oneMinusBeta1 = a.op(p+"/one_minus_beta1", "Sub", "1 − β1", []string{one, h.beta1})
	h.oneMinusBeta2 = a.op(p+"/one_minus_beta2", "Sub", "1 − β2", []string{one, h.beta2})
	lrWD := a.op(p+"/lr_wd", "Mul", "lr·weight_decay", []string{lr, in(AdamWWeightDecay)})
	h.decay = a.op(p+"/decay", "Sub", "decoupled weight decay factor 1 − lr·weight_decay", []string{one, lrWD})
	bc1 := a.op(p+"/bias_correction1", "Sub", "1 − β1^t",
		[]string{one, a.op(p+"/beta1_pow", "Pow", "β1^t", []string{h.beta1, t})})
	bc2 := a.op(p+"/bias_correction2", "Sub", "1 − β2^t",
		[]string{one, a.op(p+"/beta2_pow", "Pow", "β2^t", []string{h.beta2, t})})
	h.stepSize = a.op(p+"/step_size", "Div", "lr / (1 − β1^t)", []string{lr, bc1})
	h.sqrtBC2 = a.op(p+"/sqrt_bias_correction2", "Sqrt", "sqrt(1 − β2^t)", []string{bc2})
	a.hyper[dt] = h
	return h
}

// param emits one param's update, c being the clip coefficient in its type.
func (a *adamWBuilder) param(p AdamWParam, c string) {
	h := a.hyperFor(p.DType)
	pre := "/adamw/" + p.Name
	grad := a.op(pre+"/clipped_grad", "Mul", "g' = c·g", []string{AdamWGradName(p.Name), c})

	mOld := a.op(pre+"/m/decayed", "Mul", "β1·m", []string{h.beta1, AdamWMName(p.Name)})
	mNew := a.op(pre+"/m/fresh", "Mul", "(1−β1)·g'", []string{h.oneMinusBeta1, grad})
	a.named(pre+"/m", "Add", "m' = β1·m + (1−β1)·g'", []string{mOld, mNew}, AdamWNewMName(p.Name))

	vOld := a.op(pre+"/v/decayed", "Mul", "β2·v", []string{h.beta2, AdamWVName(p.Name)})
	sq := a.op(pre+"/v/grad_sq", "Mul", "g'²", []string{grad, grad})
	vNew := a.op(pre+"/v/fresh", "Mul", "(1−β2)·g'²", []string{h.oneMinusBeta2, sq})
	a.named(pre+"/v", "Add", "v' = β2·v + (1−β2)·g'²", []string{vOld, vNew}, AdamWNewVName(p.Name))

	// PyTorch's order: denom = sqrt(v')/sqrt(1−β2^t) + eps, then
	// p·(1−lr·wd) − step_size·m'/denom.
	root := a.op(pre+"/update/sqrt_v", "Sqrt", "sqrt(v')", []string{AdamWNewVName(p.Name)})
	vHat := a.op(pre+"/update/sqrt_v_hat", "Div", "sqrt(v̂) = sqrt(v')/sqrt(1−β2^t)", []string{root, h.sqrtBC2})
	denom := a.op(pre+"/update/denom", "Add", "sqrt(v̂) + eps", []string{vHat, h.eps})
	ratio := a.op(pre+"/update/ratio", "Div", "m' / denom", []string{AdamWNewMName(p.Name), denom})
	step := a.op(pre+"/update/step", "Mul", "lr/(1−β1^t) · m'/denom", []string{h.stepSize, ratio})
	decayed := a.op(pre+"/update/decayed", "Mul", "p·(1 − lr·weight_decay)", []string{p.Name, h.decay})
	a.named(pre+"/new", "Sub", "p' = p·(1 − lr·wd) − lr·m̂/(sqrt(v̂)+eps)", []string{decayed, step}, AdamWNewName(p.Name))
}
