package gradcheck

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"sort"

	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/runtime"
)

// Options configure a check. A zero field takes its default; a negative
// one is refused (Run returns an error rather than guess).
type Options struct {
	Samples int     // random directions per adapter tensor (default 3)
	Seed    uint64  // inputs, adapters and directions
	Batch   int     // sequences (default 2)
	SeqLen  int     // tokens per sequence, at least 2 (default 8)
	Step    float64 // finite-difference step h > 0 (default 1e-5 in float64, 1e-2 in float32)
	Device  string
}

// check refuses values that have no meaning; zeros stay for the defaults.
func (o Options) check() error {
	switch {
	case o.Samples < 0:
		return fmt.Errorf("gradcheck: %d samples: want at least 1 random direction per tensor (0: the default 3)", o.Samples)
	case o.Batch < 0:
		return fmt.Errorf("gradcheck: batch %d: want at least 1 sequence (0: the default 2)", o.Batch)
	case o.SeqLen < 0 || o.SeqLen == 1:
		return fmt.Errorf("gradcheck: sequence length %d: want at least 2 tokens (0: the default 8)", o.SeqLen)
	case o.Step < 0 || math.IsNaN(o.Step) || math.IsInf(o.Step, 0):
		return fmt.Errorf("gradcheck: step %v: want a finite h > 0 (0: the default for the dtype)", o.Step)
	}
	return nil
}

// Result is the worst relative error per adapter tensor.
type Result struct {
	DType  string
	Worst  map[string]float64
	Tensor []string // adapter names in manifest order
	Max    float64
	Loss   float64
	// The settings the check ran with, defaults filled in: what to
	// report, rather than the options asked for.
	Samples, Batch, SeqLen int
	Step                   float64
}

// DefaultTolerance is the pass threshold for a dtype.
func DefaultTolerance(dtype string) float64 {
	if dtype == "float64" {
		return 1e-6
	}
	return 2e-2
}

// Run checks the compiled directory dir.
func Run(dir string, opts Options) (*Result, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	man, err := manifest.Read(dir)
	if err != nil {
		return nil, err
	}
	train := man.Graphs[manifest.GraphTrain]
	if train == nil {
		return nil, fmt.Errorf("gradcheck: %s has no train graph; compile without --graphs to emit it", dir)
	}
	if opts.Samples == 0 {
		opts.Samples = 3
	}
	if opts.Batch == 0 {
		opts.Batch = 2
	}
	if opts.SeqLen == 0 {
		opts.SeqLen = 8
	}
	loss := train.Output("loss")
	if loss == nil {
		return nil, fmt.Errorf("gradcheck: train graph has no loss output")
	}
	dt := loss.DType
	if opts.Step == 0 {
		opts.Step = 1e-5
		if dt != "float64" {
			opts.Step = 1e-2
		}
	}
	sopts := &runtime.Options{Device: opts.Device, Config: train.SessionConfig}
	full, err := runtime.NewSession(filepath.Join(dir, train.File), sopts)
	if err != nil {
		return nil, err
	}
	defer full.Destroy()
	lopts := *sopts
	lopts.Outputs = []string{"loss"}
	fwd, err := runtime.NewSession(filepath.Join(dir, train.File), &lopts)
	if err != nil {
		return nil, err
	}
	defer fwd.Destroy()

	rng := rand.New(rand.NewPCG(opts.Seed, 0x9e3779b97f4a7c15))
	b, s := opts.Batch, opts.SeqLen
	feeds, err := randomInputs(man, rng, b, s, dt)
	if err != nil {
		return nil, err
	}
	// Old and reference log-probs near the current ones: the ratio stays
	// inside the clip range and away from its kinks.
	out, err := full.Run(feeds, "logprobs")
	if err != nil {
		return nil, err
	}
	lp := out["logprobs"].Floats()
	old, ref := make([]float64, len(lp)), make([]float64, len(lp))
	for i, v := range lp {
		old[i] = v + 0.05*(2*rng.Float64()-1)
		ref[i] = v + 0.3*(2*rng.Float64()-1)
	}
	if feeds["old_logprobs"], err = floats(dt, []int64{int64(b), int64(s)}, old); err != nil {
		return nil, err
	}
	if feeds["ref_logprobs"], err = floats(dt, []int64{int64(b), int64(s)}, ref); err != nil {
		return nil, err
	}
	grads, err := full.Run(feeds)
	if err != nil {
		return nil, err
	}
	res := &Result{DType: dt, Worst: map[string]float64{}, Loss: grads["loss"].Floats()[0],
		Samples: opts.Samples, Batch: b, SeqLen: s, Step: opts.Step}
	lossAt := func() (float64, error) {
		o, err := fwd.Run(feeds, "loss")
		if err != nil {
			return 0, err
		}
		return o["loss"].Floats()[0], nil
	}
	for _, name := range man.AdapterNames() {
		res.Tensor = append(res.Tensor, name)
		g := grads["grad."+name].Floats()
		theta := feeds[name].Floats()
		shape := feeds[name].Shape()
		worst := 0.0
		for k := 0; k < opts.Samples; k++ {
			u := make([]float64, len(theta))
			norm := 0.0
			for i := range u {
				u[i] = rng.NormFloat64()
				norm += u[i] * u[i]
			}
			norm = math.Sqrt(norm)
			ana := 0.0
			for i := range u {
				u[i] /= norm
				ana += g[i] * u[i]
			}
			eval := func(sign float64) (float64, error) {
				p := make([]float64, len(theta))
				for i := range p {
					p[i] = theta[i] + sign*opts.Step*u[i]
				}
				t, err := floats(dt, shape, p)
				if err != nil {
					return 0, err
				}
				feeds[name] = t
				return lossAt()
			}
			lp, err := eval(1)
			if err != nil {
				return nil, err
			}
			lm, err := eval(-1)
			if err != nil {
				return nil, err
			}
			worst = math.Max(worst, relErr((lp-lm)/(2*opts.Step), ana))
		}
		restored, err := floats(dt, shape, theta)
		if err != nil {
			return nil, err
		}
		feeds[name] = restored
		res.Worst[name] = worst
		res.Max = math.Max(res.Max, worst)
	}
	return res, nil
}

// Sorted returns the adapter names from worst to best.
func (r *Result) Sorted() []string {
	names := append([]string(nil), r.Tensor...)
	sort.SliceStable(names, func(i, j int) bool { return r.Worst[names[i]] > r.Worst[names[j]] })
	return names
}

func floats(dt string, shape []int64, v []float64) (*runtime.Tensor, error) {
	if dt == "float64" {
		return runtime.FromFloat64(shape, v)
	}
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return runtime.FromFloat32(shape, f)
}

// randomInputs draws the train graph's inputs: left-padded sequences, mixed
// roles, positive weights (zero on padding and on the last position),
// advantages of both signs and non-zero adapters.
func randomInputs(man *manifest.Manifest, rng *rand.Rand, b, s int, dt string) (map[string]*runtime.Tensor, error) {
	vocab := man.Model.Vocab
	if vocab <= 0 {
		return nil, fmt.Errorf("gradcheck: the manifest does not record the vocabulary size")
	}
	n := b * s
	ids, mask, pos, roles := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	w, adv := make([]float64, n), make([]float64, n)
	for r := 0; r < b; r++ {
		pad := r % 3 // row r starts with r%3 pads
		p := int64(0)
		for t := 0; t < s; t++ {
			i := r*s + t
			ids[i] = rng.Int64N(vocab)
			roles[i] = int64(rng.IntN(len(man.LoRA.Roles)))
			adv[i] = 2*rng.Float64() - 1
			if t < pad {
				pos[i] = 1
				continue
			}
			mask[i], pos[i] = 1, p
			p++
			if t < s-1 {
				w[i] = 0.2 + rng.Float64()
			}
		}
	}
	shape := []int64{int64(b), int64(s)}
	feeds := map[string]*runtime.Tensor{}
	var err error
	set := func(name string, t *runtime.Tensor, e error) {
		if err == nil {
			feeds[name], err = t, e
		}
	}
	t, e := runtime.FromInt64(shape, ids)
	set("input_ids", t, e)
	t, e = runtime.FromInt64(shape, mask)
	set("attention_mask", t, e)
	t, e = runtime.FromInt64(shape, pos)
	set("position_ids", t, e)
	t, e = runtime.FromInt64(shape, roles)
	set(man.LoRA.RoleInput, t, e)
	t, e = floats(dt, shape, w)
	set("token_weights", t, e)
	t, e = floats(dt, shape, adv)
	set("advantages", t, e)
	zeros := make([]float64, n)
	t, e = floats(dt, shape, zeros)
	set("old_logprobs", t, e)
	t, e = floats(dt, shape, zeros)
	set("ref_logprobs", t, e)
	for name, v := range map[string]float64{"clip_low": 0.2, "clip_high": 0.2, "kl_coef": 0.1, "entropy_coeff": 0.05} {
		t, e = floats(dt, nil, []float64{v})
		set(name, t, e)
	}
	train := man.Graphs[manifest.GraphTrain]
	if train.Input("loss_scale") != nil { // float16 graphs: no scaling here
		t, e = floats(dt, nil, []float64{1})
		set("loss_scale", t, e)
	}
	for _, name := range man.AdapterNames() {
		spec := train.Input(name)
		if spec == nil {
			return nil, fmt.Errorf("gradcheck: train graph has no input %s", name)
		}
		shape := []int64{spec.Dims[0].Value, spec.Dims[1].Value}
		v := make([]float64, shape[0]*shape[1])
		for i := range v {
			v[i] = 0.1 * rng.NormFloat64()
		}
		t, e := floats(dt, shape, v)
		set(name, t, e)
	}
	return feeds, err
}

// relErr is |num − ana| / max(|num|, |ana|, 1e-8), 0 when both are 0, and
// +Inf when either is not finite: a NaN gradient or loss fails the check
// (a NaN would otherwise compare below every tolerance).
func relErr(num, ana float64) float64 {
	if math.IsNaN(num) || math.IsNaN(ana) || math.IsInf(num, 0) || math.IsInf(ana, 0) {
		return math.Inf(1)
	}
	scale := math.Max(math.Abs(num), math.Abs(ana))
	if scale == 0 {
		return 0
	}
	return math.Abs(num-ana) / math.Max(scale, 1e-8)
}
