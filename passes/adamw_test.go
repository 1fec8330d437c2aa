package passes_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/passes"
	ort "github.com/yalue/onnxruntime_go"
)

// refAdamW is the test's own AdamW, written from the textbook formulas with
// explicit bias-corrected moments m̂ and v̂ (the graph folds the corrections
// into a step size and a denominator, as PyTorch does), in float64.
type refAdamW struct {
	p, m, v [][]float64
}

type adamWHyper struct {
	step, lr, beta1, beta2, eps, wd, maxNorm float64
}

// f32 rounds a hyper-parameter the way the graph sees it: every scalar
// input is float32.
func f32(x float64) float64 { return float64(float32(x)) }

// step applies one AdamW step with torch.nn.utils.clip_grad_norm_ clipping
// and returns the norm before clipping.
func (r *refAdamW) step(grads [][]float64, h adamWHyper) float64 {
	step, lr, b1, b2, eps, wd, maxNorm := f32(h.step), f32(h.lr), f32(h.beta1), f32(h.beta2), f32(h.eps), f32(h.wd), f32(h.maxNorm)
	var sq float64
	for _, g := range grads {
		for _, x := range g {
			sq += x * x
		}
	}
	norm := math.Sqrt(sq)
	clip := 1.0
	if maxNorm > 0 && maxNorm/(norm+1e-6) < 1 {
		clip = maxNorm / (norm + 1e-6)
	}
	for i, g := range grads {
		for j := range g {
			gc := clip * g[j]
			r.m[i][j] = b1*r.m[i][j] + (1-b1)*gc
			r.v[i][j] = b2*r.v[i][j] + (1-b2)*gc*gc
			mHat := r.m[i][j] / (1 - math.Pow(b1, step))
			vHat := r.v[i][j] / (1 - math.Pow(b2, step))
			r.p[i][j] -= lr * (mHat/(math.Sqrt(vHat)+eps) + wd*r.p[i][j])
		}
	}
	return norm
}

func numel(dims []int64) int {
	n := 1
	for _, d := range dims {
		n *= int(d)
	}
	return n
}

// The project's runtime.Tensor cannot carry rank-0 values (onnxruntime_go's
// Shape.Validate rejects an empty shape, for inputs and for ORT-allocated
// outputs alike), and adamw.onnx's hyper-parameters and grad_norm are
// rank-0, so these tests drive ONNX Runtime through onnxruntime_go directly:
// rank-0 values as ort.Scalar, outputs pre-allocated.

// newValue makes an ORT value of type dt and shape dims holding v (rounded
// to float32 for float32).
func newValue(t testing.TB, dt ir.DType, dims []int64, v []float64) ort.Value {
	t.Helper()
	var (
		x   ort.Value
		err error
	)
	switch {
	case dt == ir.Float32 && len(dims) == 0:
		x, err = ort.NewScalar(float32(v[0]))
	case dt == ir.Float64 && len(dims) == 0:
		x, err = ort.NewScalar(v[0])
	case dt == ir.Float32:
		f := make([]float32, len(v))
		for i := range v {
			f[i] = float32(v[i])
		}
		x, err = ort.NewTensor(ort.NewShape(dims...), f)
	case dt == ir.Float64:
		x, err = ort.NewTensor(ort.NewShape(dims...), append([]float64(nil), v...))
	default:
		t.Fatalf("no ORT value for %s", dt)
	}
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// floatsOf reads an ORT value back as float64s.
func floatsOf(t testing.TB, v ort.Value) []float64 {
	t.Helper()
	switch x := v.(type) {
	case *ort.Scalar[float32]:
		return []float64{float64(x.GetData())}
	case *ort.Scalar[float64]:
		return []float64{x.GetData()}
	case *ort.Tensor[float32]:
		out := make([]float64, len(x.GetData()))
		for i, f := range x.GetData() {
			out[i] = float64(f)
		}
		return out
	case *ort.Tensor[float64]:
		return append([]float64(nil), x.GetData()...)
	}
	t.Fatalf("unexpected ORT value %T", v)
	return nil
}

// roundTo rounds v to the values a tensor of type dt holds.
func roundTo(dt ir.DType, v []float64) []float64 {
	if dt == ir.Float32 {
		for i := range v {
			v[i] = f32(v[i])
		}
	}
	return v
}

// adamWSession is adamw.onnx opened on ONNX Runtime, with its outputs
// pre-allocated once.
type adamWSession struct {
	sess    *ort.DynamicAdvancedSession
	inputs  []*ir.ValueInfo
	outputs []*ir.ValueInfo
	outVals []ort.Value
}

// openAdamW builds adamw.onnx into a temp dir and opens it.
func openAdamW(t testing.TB, params []passes.AdamWParam, opset int64) *adamWSession {
	t.Helper()
	m, err := passes.BuildAdamW(params, opset)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "adamw.onnx")
	if err := ir.Save(m, path, ir.EmitOptions{}); err != nil {
		t.Fatal(err)
	}
	a := &adamWSession{inputs: m.Graph.Inputs, outputs: m.Graph.Outputs}
	var ins, outs []string
	for _, v := range a.inputs {
		ins = append(ins, v.Name)
	}
	for _, v := range a.outputs {
		outs = append(outs, v.Name)
		dims := make([]int64, len(v.Type.Dims))
		for i, d := range v.Type.Dims {
			dims[i] = d.Value
		}
		a.outVals = append(a.outVals, newValue(t, v.Type.DType, dims, make([]float64, max(1, numel(dims)))))
	}
	if a.sess, err = ort.NewDynamicAdvancedSession(path, ins, outs, nil); err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	t.Cleanup(func() {
		a.sess.Destroy()
		for _, v := range a.outVals {
			v.Destroy()
		}
	})
	return a
}

// values turns named float64 data into ORT inputs in graph order.
func (a *adamWSession) values(t testing.TB, in map[string][]float64) []ort.Value {
	t.Helper()
	vals := make([]ort.Value, len(a.inputs))
	for i, v := range a.inputs {
		data, ok := in[v.Name]
		if !ok {
			t.Fatalf("no value for input %q", v.Name)
		}
		dims := make([]int64, len(v.Type.Dims))
		for j, d := range v.Type.Dims {
			dims[j] = d.Value
		}
		vals[i] = newValue(t, v.Type.DType, dims, data)
	}
	return vals
}

// run runs one step and returns every output by name.
func (a *adamWSession) run(t testing.TB, vals []ort.Value) map[string][]float64 {
	t.Helper()
	if err := a.sess.Run(vals, a.outVals); err != nil {
		t.Fatal(err)
	}
	out := make(map[string][]float64, len(a.outputs))
	for i, v := range a.outputs {
		out[v.Name] = floatsOf(t, a.outVals[i])
	}
	return out
}

func destroyAll(vals []ort.Value) {
	for _, v := range vals {
		v.Destroy()
	}
}

func hyperInputs(h adamWHyper) map[string][]float64 {
	return map[string][]float64{
		passes.AdamWStep: {h.step}, passes.AdamWLR: {h.lr},
		passes.AdamWBeta1: {h.beta1}, passes.AdamWBeta2: {h.beta2},
		passes.AdamWEps: {h.eps}, passes.AdamWWeightDecay: {h.wd},
		passes.AdamWMaxGradNorm: {h.maxNorm},
	}
}

// relErr is |got−want| relative to |want|, floored at floor: elements near
// a zero crossing (m changes sign, and float32 cancellation in β1·m +
// (1−β1)·g' leaves an error on the scale of the summands) are judged on the
// scale of the whole quantity instead.
func relErr(got, want []float64, floor float64) (worst float64, at int) {
	for i := range want {
		e := math.Abs(got[i]-want[i]) / math.Max(math.Abs(want[i]), floor)
		if !(e <= worst) { // catches NaN
			worst, at = e, i
		}
	}
	return worst, at
}

// rms is the root mean square of every element of every tensor.
func rms(tensors [][]float64) float64 {
	var ss float64
	var n int
	for _, t := range tensors {
		for _, x := range t {
			ss += x * x
		}
		n += len(t)
	}
	return math.Sqrt(ss / float64(n))
}

// The schedule of the 10 steps: grad scales put the global norm above
// max_grad_norm in some steps and below it in others; the last two steps
// turn clipping off (0 and −1) while the norm is large; lr follows a decay.
var (
	gradScales = []float64{3, 0.2, 5, 0.4, 1.5, 0.1, 8, 0.3, 6, 4}
	maxNorms   = []float64{1, 1, 1, 1, 1, 1, 2, 2, 0, -1}
)

func scheduleHyper(step int) adamWHyper {
	return adamWHyper{step: float64(step), lr: 0.05 / (1 + 0.1*float64(step-1)), beta1: 0.9, beta2: 0.999,
		eps: 1e-8, wd: 0.1, maxNorm: maxNorms[step-1]}
}

// runAgainstReference runs steps AdamW steps on ORT, feeding the graph its
// own outputs, and the reference on its own float64 state, from the same
// start and grads. Every output of every step must be within tol; it
// returns the worst relative error seen and how many steps clipped.
func runAgainstReference(t *testing.T, params []passes.AdamWParam, opset int64, steps int, seed uint64, tol float64) (worst float64, clipped, unclipped int) {
	t.Helper()
	s := openAdamW(t, params, opset)
	rng := rand.New(rand.NewPCG(seed, 1))
	ref := &refAdamW{}
	// state is what the graph gets next: its own previous outputs.
	state := map[string][]float64{}
	var total int
	for _, p := range params {
		n := numel(p.Dims)
		total += n
		init := make([]float64, n)
		for j := range init {
			init[j] = rng.Float64()*2 - 1
		}
		init = roundTo(p.DType, init)
		ref.p = append(ref.p, append([]float64(nil), init...))
		ref.m = append(ref.m, make([]float64, n))
		ref.v = append(ref.v, make([]float64, n))
		state[p.Name] = init
		state[passes.AdamWMName(p.Name)] = make([]float64, n)
		state[passes.AdamWVName(p.Name)] = make([]float64, n)
	}
	for step := 1; step <= steps; step++ {
		h := scheduleHyper(step)
		in := hyperInputs(h)
		grads := make([][]float64, len(params))
		for i, p := range params {
			g := make([]float64, numel(p.Dims))
			for j := range g {
				// The global norm comes out near the step's scale.
				g[j] = rng.NormFloat64() * gradScales[step-1] / math.Sqrt(float64(total))
			}
			grads[i] = roundTo(p.DType, g)
			in[passes.AdamWGradName(p.Name)] = grads[i]
		}
		for k, v := range state {
			in[k] = v
		}
		vals := s.values(t, in)
		out := s.run(t, vals)
		destroyAll(vals)

		norm := ref.step(grads, h)
		if mn := f32(h.maxNorm); mn > 0 && norm > mn {
			clipped++
		} else {
			unclipped++
		}
		gotNorm := out[passes.AdamWGradNorm][0]
		if e := math.Abs(gotNorm-norm) / norm; !(e <= 1e-6) {
			t.Errorf("step %d: grad_norm %.9g, reference %.9g (relative error %.3g)", step, gotNorm, norm, e)
		}
		// Each quantity (p, m, v) is judged against the reference on the
		// scale of its RMS over all params.
		floors := map[string]float64{"p": rms(ref.p), "m": rms(ref.m), "v": rms(ref.v)}
		for i, p := range params {
			for _, c := range []struct {
				out, kind string
				want      []float64
				next      string
			}{
				{passes.AdamWNewName(p.Name), "p", ref.p[i], p.Name},
				{passes.AdamWNewMName(p.Name), "m", ref.m[i], passes.AdamWMName(p.Name)},
				{passes.AdamWNewVName(p.Name), "v", ref.v[i], passes.AdamWVName(p.Name)},
			} {
				got := out[c.out]
				e, at := relErr(got, c.want, floors[c.kind])
				if !(e <= worst) {
					worst = e
				}
				if !(e <= tol) {
					t.Errorf("step %d: %s[%d] = %.9g, reference %.9g (relative error %.3g > %g)",
						step, c.out, at, got[at], c.want[at], e, tol)
				}
				state[c.next] = got
			}
		}
	}
	return worst, clipped, unclipped
}

func TestAdamWMatchesReference(t *testing.T) {
	orttest.Init(t)
	cases := []struct {
		name   string
		params []passes.AdamWParam
		tol    float64 // worst relative error over 10 steps
	}{
		{"float32", []passes.AdamWParam{
			{Name: "layers.0.q_proj.lora_A.tool.weight", DType: ir.Float32, Dims: []int64{6, 4}},
			{Name: "layers.0.q_proj.lora_B.tool.weight", DType: ir.Float32, Dims: []int64{4, 5}},
			{Name: "bias", DType: ir.Float32, Dims: []int64{7}},
			{Name: "gain", DType: ir.Float32, Dims: nil},
			{Name: "cube", DType: ir.Float32, Dims: []int64{2, 3, 2}},
		}, 1e-6},
		// In float64 the graph and the reference differ only in the order of
		// operations.
		{"float64", []passes.AdamWParam{
			{Name: "a", DType: ir.Float64, Dims: []int64{5, 3}},
			{Name: "b", DType: ir.Float64, Dims: []int64{3, 8}},
			{Name: "c", DType: ir.Float64, Dims: []int64{1}},
		}, 1e-12},
		// The norm is summed in float64; float32 params get the clip
		// coefficient cast down.
		{"mixed", []passes.AdamWParam{
			{Name: "wide", DType: ir.Float64, Dims: []int64{4, 4}},
			{Name: "narrow", DType: ir.Float32, Dims: []int64{3, 9}},
		}, 1e-6},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			worst, clipped, unclipped := runAgainstReference(t, c.params, 0, 10, uint64(i+1), c.tol)
			t.Logf("worst relative error over 10 steps: %.3g (clipping active in %d steps, off in %d)", worst, clipped, unclipped)
			// The schedule must exercise both sides of the clip.
			if clipped < 3 || unclipped < 3 {
				t.Errorf("clipping active in %d steps and off in %d: the schedule should give ≥ 3 of each", clipped, unclipped)
			}
		})
	}
}

// Every accepted opset gives a graph ORT loads and that matches the
// reference.
func TestAdamWOpsets(t *testing.T) {
	orttest.Init(t)
	params := []passes.AdamWParam{{Name: "w", DType: ir.Float32, Dims: []int64{3, 2}}, {Name: "u", DType: ir.Float64, Dims: []int64{4}}}
	for _, opset := range []int64{13, 18, 21, 23} {
		t.Run(fmt.Sprint(opset), func(t *testing.T) {
			runAgainstReference(t, params, opset, 3, 7, 1e-6)
		})
	}
}

func TestAdamWGraphIsValid(t *testing.T) {
	params := []passes.AdamWParam{
		{Name: "x.lora_A.reason.weight", DType: ir.Float32, Dims: []int64{8, 2}},
		{Name: "x.lora_B.reason.weight", DType: ir.Float64, Dims: []int64{2, 8}},
	}
	m, err := passes.BuildAdamW(params, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := ir.Check(m.Graph); err != nil {
		t.Fatal(err)
	}
	if err := ir.CheckModel(m); err != nil {
		t.Fatal(err)
	}
	if got := m.OpsetVersion(""); got != passes.DefaultAdamWOpset || m.IRVersion != ir.IRVersionForOpset(passes.DefaultAdamWOpset) {
		t.Errorf("opset %d IR %d, want opset %d IR %d", got, m.IRVersion, passes.DefaultAdamWOpset, ir.IRVersionForOpset(passes.DefaultAdamWOpset))
	}

	// Inputs and outputs: names, types, shapes.
	for _, p := range params {
		for _, name := range []string{p.Name, passes.AdamWGradName(p.Name), passes.AdamWMName(p.Name), passes.AdamWVName(p.Name)} {
			v := m.Graph.Input(name)
			if v == nil || v.Type.String() != ir.TensorType(p.DType, ir.Dims(p.Dims...)...).String() {
				t.Errorf("input %q: %v, want %s%v", name, v, p.DType, p.Dims)
			}
		}
		for _, name := range []string{passes.AdamWNewName(p.Name), passes.AdamWNewMName(p.Name), passes.AdamWNewVName(p.Name)} {
			v := m.Graph.Output(name)
			if v == nil || v.Type.String() != ir.TensorType(p.DType, ir.Dims(p.Dims...)...).String() {
				t.Errorf("output %q: %v, want %s%v", name, v, p.DType, p.Dims)
			}
		}
	}
	for _, name := range []string{passes.AdamWStep, passes.AdamWLR, passes.AdamWBeta1, passes.AdamWBeta2,
		passes.AdamWEps, passes.AdamWWeightDecay, passes.AdamWMaxGradNorm} {
		if v := m.Graph.Input(name); v == nil || v.Type.String() != "float32[]" {
			t.Errorf("scalar input %q: %v, want float32[]", name, v)
		}
	}
	if v := m.Graph.Output(passes.AdamWGradNorm); v == nil || v.Type.String() != "float32[]" {
		t.Errorf("output grad_norm: %v, want float32[]", v)
	}
	if n := len(m.Graph.Inputs); n != 7+4*len(params) {
		t.Errorf("%d inputs, want %d", n, 7+4*len(params))
	}
	if n := len(m.Graph.Outputs); n != 1+3*len(params) {
		t.Errorf("%d outputs, want %d", n, 1+3*len(params))
	}

	// Netron-readable: hierarchical names and a doc string on every node.
	for _, n := range m.Graph.Nodes {
		if !strings.HasPrefix(n.Name, "/adamw/") || n.Doc == "" {
			t.Errorf("%s: want a /adamw/… name and a doc string (doc %q)", n, n.Doc)
		}
	}
	for _, want := range []string{"/adamw/x.lora_A.reason.weight/m", "/adamw/x.lora_B.reason.weight/v", "/adamw/clip/norm"} {
		found := false
		for _, n := range m.Graph.Nodes {
			found = found || n.Name == want
		}
		if !found {
			t.Errorf("no node %q", want)
		}
	}

	// The emitted file parses back into a valid model.
	path := filepath.Join(t.TempDir(), "adamw.onnx")
	if err := ir.Save(m, path, ir.EmitOptions{}); err != nil {
		t.Fatal(err)
	}
	back, err := ir.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := ir.CheckModel(back); err != nil {
		t.Fatal(err)
	}
	if len(back.Graph.Nodes) != len(m.Graph.Nodes) {
		t.Errorf("reloaded graph has %d nodes, built %d", len(back.Graph.Nodes), len(m.Graph.Nodes))
	}
}

func TestBuildAdamWErrors(t *testing.T) {
	w := passes.AdamWParam{Name: "w", DType: ir.Float32, Dims: []int64{2, 2}}
	cases := []struct {
		name   string
		params []passes.AdamWParam
		opset  int64
		want   string
	}{
		{"no params", nil, 0, "no params to optimize"},
		{"duplicate", []passes.AdamWParam{w, {Name: "w", DType: ir.Float32, Dims: []int64{3}}}, 0, `param "w" (number 1) needs the graph name "w", already taken by param "w"`},
		{"int64", []passes.AdamWParam{{Name: "ids", DType: ir.Int64, Dims: []int64{2}}}, 0, `param "ids" is int64: adapters and their optimizer state must be float32 or float64`},
		{"float16", []passes.AdamWParam{{Name: "h", DType: ir.Float16, Dims: []int64{2}}}, 0, `param "h" is float16`},
		{"no name", []passes.AdamWParam{w, {DType: ir.Float32}}, 0, "param 1 has no name"},
		{"zero dim", []passes.AdamWParam{{Name: "z", DType: ir.Float32, Dims: []int64{2, 0}}}, 0, `param "z" has dims [2 0]: every dim must be a positive size`},
		{"clashes with a scalar", []passes.AdamWParam{{Name: "lr", DType: ir.Float32, Dims: []int64{1}}}, 0, `needs the graph name "lr", already taken by the scalar input lr`},
		{"clashes with a grad", []passes.AdamWParam{w, {Name: "grad.w", DType: ir.Float32, Dims: []int64{1}}}, 0, `param "grad.w" (number 1) needs the graph name "grad.w", already taken by param "w"`},
		{"old opset", []passes.AdamWParam{w}, 12, "opset 12 is outside 13…23"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := passes.BuildAdamW(c.params, c.opset)
			if err == nil {
				t.Fatalf("built a model with %d nodes, want an error", len(m.Graph.Nodes))
			}
			if !errors.Is(err, passes.ErrBadOptimizerSpec) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q, want ErrBadOptimizerSpec containing %q", err, c.want)
			}
		})
	}
}

// BenchmarkAdamWStep2M times one step over 2,007,040 float32 parameters in
// 140 LoRA-shaped tensors (rank 16 on a 896-wide model, A [896,16] and
// B [16,896] alternating), and over the same count in two tensors, which
// separates per-node overhead from memory traffic.
func BenchmarkAdamWStep2M(b *testing.B) {
	orttest.Init(b)
	lora := make([]passes.AdamWParam, 140)
	for i := range lora {
		dims := []int64{896, 16}
		if i%2 == 1 {
			dims = []int64{16, 896}
		}
		lora[i] = passes.AdamWParam{Name: fmt.Sprintf("t%d.weight", i), DType: ir.Float32, Dims: dims}
	}
	wide := []passes.AdamWParam{
		{Name: "a", DType: ir.Float32, Dims: []int64{1003520}},
		{Name: "b", DType: ir.Float32, Dims: []int64{1003520}},
	}
	for _, c := range []struct {
		name   string
		params []passes.AdamWParam
	}{{"lora140", lora}, {"flat2", wide}} {
		b.Run(c.name, func(b *testing.B) {
			s := openAdamW(b, c.params, 0)
			rng := rand.New(rand.NewPCG(1, 2))
			in := hyperInputs(scheduleHyper(3))
			var total int
			for _, p := range c.params {
				n := numel(p.Dims)
				total += n
				for _, name := range []string{p.Name, passes.AdamWGradName(p.Name), passes.AdamWMName(p.Name), passes.AdamWVName(p.Name)} {
					v := make([]float64, n)
					for j := range v {
						v[j] = rng.Float64() * 0.01
					}
					in[name] = v
				}
			}
			vals := s.values(b, in)
			defer destroyAll(vals)
			b.ResetTimer()
			for range b.N {
				if err := s.sess.Run(vals, s.outVals); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparams/s")
		})
	}
}
