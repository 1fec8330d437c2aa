package grpo

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dartc/dartc/eval"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/qwen2ref"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/trajectory"
)

// noRoller refuses to roll out: the isolation tests feed trajectories by hand.
type noRoller struct{}

func (noRoller) Rollout(context.Context, []eval.Example, int, map[string]*runtime.Tensor, uint64) ([]*trajectory.Trajectory, error) {
	panic("grpo: the isolation tests roll nothing out")
}

// mixedTrajectories are two rollouts whose sampled positions alternate
// between reasoning and tool segments, with an observation (no loss) in
// between: every later reasoning token attends to earlier tool positions.
func mixedTrajectories(rng *rand.Rand) []*trajectory.Trajectory {
	layouts := [][]struct {
		role   int64
		policy bool
		n      int
	}{
		{{0, false, 3}, {0, true, 3}, {1, true, 3}, {1, false, 2}, {0, true, 3}, {1, true, 2}, {0, false, 1}},
		{{0, false, 2}, {1, true, 2}, {0, true, 4}, {1, true, 2}, {0, true, 1}, {0, false, 1}},
	}
	var out []*trajectory.Trajectory
	for _, l := range layouts {
		tj := &trajectory.Trajectory{PromptLen: l[0].n}
		for _, seg := range l {
			for range seg.n {
				tj.Tokens = append(tj.Tokens, rng.Int64N(int64(toyConfig.Vocab)))
				tj.Roles = append(tj.Roles, seg.role)
				tj.Policy = append(tj.Policy, seg.policy)
			}
		}
		tj.LogProbs = make([]float64, len(tj.Tokens))
		out = append(out, tj)
	}
	return out
}

// lossRef evaluates the GRPO loss from its definition on a plain-loop
// float64 Qwen2 forward (qwen2ref) with the dual LoRA written out:
// y = x·W + b + (alpha/rank)·(x·A_k)·B_k for the role k of the position.
type lossRef struct {
	model  *qwen2ref.Model
	trajs  []*trajectory.Trajectory
	w      [][]float64
	adv    []float64
	old    [][]float64
	ref    [][]float64
	clipLo float64
	clipHi float64
	kl     float64
	scale  float64
	rank   int
	// adapters[target kind][role] = A [in, rank], B [rank, out], float64.
	a, b     map[qwen2.TargetKind][][]float64
	in, out  map[qwen2.TargetKind]int
	disabled bool // zero adapters: the base model
}

func newLossRef(t *testing.T, tr *Trainer, trajs []*trajectory.Trajectory) *lossRef {
	t.Helper()
	m, err := qwen2ref.New(toyConfig, toyWeights)
	if err != nil {
		t.Fatal(err)
	}
	lr := &lossRef{model: m, trajs: trajs, clipLo: tr.cfg.ClipLow, clipHi: tr.cfg.ClipHigh, kl: tr.cfg.KLCoef,
		scale: tr.man.LoRA.Alpha / float64(tr.man.LoRA.Rank), rank: tr.man.LoRA.Rank,
		a: map[qwen2.TargetKind][][]float64{}, b: map[qwen2.TargetKind][][]float64{},
		in: map[qwen2.TargetKind]int{}, out: map[qwen2.TargetKind]int{}}
	m.Delta = lr.delta
	for _, tg := range tr.man.LoRA.Targets {
		k, err := qwen2.ParseTargetKind(tg.Kind)
		if err != nil || tg.Layer != 0 {
			t.Fatalf("target %s: %v", tg.Module, err)
		}
		lr.in[k], lr.out[k] = int(tg.In), int(tg.Out)
		for _, role := range tr.man.LoRA.Roles {
			lr.a[k] = append(lr.a[k], tr.params[tg.A[role]].Floats())
			lr.b[k] = append(lr.b[k], tr.params[tg.B[role]].Floats())
		}
	}
	return lr
}

// param returns the float64 slice behind adapter input name n.
func (lr *lossRef) param(tr *Trainer, n string) []float64 {
	for _, tg := range tr.man.LoRA.Targets {
		k, _ := qwen2.ParseTargetKind(tg.Kind)
		for r, role := range tr.man.LoRA.Roles {
			if tg.A[role] == n {
				return lr.a[k][r]
			}
			if tg.B[role] == n {
				return lr.b[k][r]
			}
		}
	}
	return nil
}

func (lr *lossRef) delta(_ int, k qwen2.TargetKind, row, pos int, x []float64) []float64 {
	y := make([]float64, lr.out[k])
	if lr.disabled {
		return y
	}
	role := lr.trajs[row].Roles[pos]
	a, b := lr.a[k][role], lr.b[k][role]
	h := make([]float64, lr.rank)
	for i, xi := range x {
		for j := range h {
			h[j] += xi * a[i*lr.rank+j]
		}
	}
	for j, hj := range h {
		for o := range y {
			y[o] += lr.scale * hj * b[j*lr.out[k]+o]
		}
	}
	return y
}

// logprobs returns log p(token t+1 | ≤ t) of every position of every
// trajectory (0 at the last).
func (lr *lossRef) logprobs(t *testing.T) [][]float64 {
	out := make([][]float64, len(lr.trajs))
	V := toyConfig.Vocab
	for i, tj := range lr.trajs {
		n := len(tj.Tokens)
		mask, pos := make([]int64, n), make([]int64, n)
		for p := range n {
			mask[p], pos[p] = 1, int64(p)
		}
		// One row per call: Delta's row index is the trajectory's.
		m := *lr.model
		m.Delta = func(l int, k qwen2.TargetKind, _, p int, x []float64) []float64 { return lr.delta(l, k, i, p, x) }
		logits, _, err := m.Forward([][]int64{tj.Tokens}, [][]int64{mask}, [][]int64{pos}, nil)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = make([]float64, n)
		for p := 0; p+1 < n; p++ {
			row := logits[p*V : (p+1)*V]
			mx := math.Inf(-1)
			for _, v := range row {
				mx = math.Max(mx, v)
			}
			z := 0.0
			for _, v := range row {
				z += math.Exp(v - mx)
			}
			out[i][p] = row[tj.Tokens[p+1]] - mx - math.Log(z)
		}
	}
	return out
}

// losses returns the loss of the reasoning positions and of the tool
// positions: Σ w·(max(−A·r, −A·clip(r)) + β·clamp(k3, ±10)) with
// r = exp(lp − old) and k3 = exp(ref − lp) − (ref − lp) − 1.
func (lr *lossRef) losses(t *testing.T) (reason, tool float64) {
	lp := lr.logprobs(t)
	var sum [2]float64
	for i, tj := range lr.trajs {
		for p := range tj.Tokens {
			if lr.w[i][p] == 0 {
				continue
			}
			r := math.Exp(lp[i][p] - lr.old[i][p])
			rc := math.Min(math.Max(r, 1-lr.clipLo), 1+lr.clipHi)
			pg := math.Max(-lr.adv[i]*r, -lr.adv[i]*rc)
			d := lr.ref[i][p] - lp[i][p]
			k3 := math.Min(math.Max(math.Exp(d)-d-1, -10), 10)
			sum[tj.Roles[p]] += lr.w[i][p] * (pg + lr.kl*k3)
		}
	}
	return sum[0], sum[1]
}

// TestStrictIsolation checks both isolation modes on mixed-role sequences
// against an independent reference: central differences (float64) of the
// loss written out from its definition over a plain-loop Qwen2 forward
// with the dual LoRA (lossRef), split into the losses of the reasoning and
// of the tool positions, for every adapter parameter:
//   - strict: each adapter's gradient equals d L_own / d θ, the loss of its
//     own role's tokens only; scaling the other role's token weights leaves
//     it bit-identical (the cross-role contribution is exactly zero);
//   - default: each adapter's gradient equals d L / d θ of the whole loss,
//     whose cross-role part d L_other / d θ is measured and must not be
//     negligible (else the sequences could not tell the modes apart).
//
// train.onnx runs in float32 (the trainer cannot open float64 logprobs
// graphs yet), so agreement is to float32 precision.
func TestStrictIsolation(t *testing.T) {
	dir := toyModel(t)
	rng := rand.New(rand.NewPCG(5, 6))
	trajs := mixedTrajectories(rng)
	adv := []float64{0.9, -1.1}
	open := func(isolation string) *Trainer {
		cfg := toyTrainConfig()
		cfg.Isolation, cfg.KLCoef, cfg.MicroBatch = isolation, 0.05, 1 // micro-batch 1: sums over calls too
		// Host tensors: the test sets the adapters in Go memory.
		tr, err := New(Options{Model: dir, Run: t.TempDir(), Config: cfg, Data: toyData(1), Roller: noRoller{}, HostTensors: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	def, strict := open(IsolationDefault), open(IsolationStrict)
	// Adapters away from zero (B = 0 would zero A's gradient), the same in both.
	for _, n := range def.names {
		v := def.params[n].Float32()
		for i := range v {
			v[i] = float32(0.3 * rng.NormFloat64())
		}
		copy(strict.params[n].Float32(), v)
	}
	w, err := TokenWeights(trajs, AggTokenMean, GradAll)
	if err != nil {
		t.Fatal(err)
	}
	lr := newLossRef(t, def, trajs)
	lr.w, lr.adv = w, adv
	lr.disabled = true
	lr.ref = lr.logprobs(t) // the base model
	lr.disabled = false
	lp0 := lr.logprobs(t)
	lr.old = make([][]float64, len(trajs))
	for i := range lp0 {
		lr.old[i] = make([]float64, len(lp0[i]))
		for p := range lp0[i] {
			lr.old[i][p] = lp0[i][p] + 0.03*(2*rng.Float64()-1) // ratios within 3%: no clipping kink nearby
		}
	}
	gDef, _, _, err := def.gradients(trajs, w, adv, lr.old, lr.ref, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	gStrict, _, _, err := strict.gradients(trajs, w, adv, lr.old, lr.ref, nil, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Central differences of both role losses for every parameter.
	const h = 1e-6
	dReason, dTool := map[string][]float64{}, map[string][]float64{}
	for _, n := range def.names {
		p := lr.param(def, n)
		dReason[n], dTool[n] = make([]float64, len(p)), make([]float64, len(p))
		for j := range p {
			x := p[j]
			p[j] = x + h
			r1, t1 := lr.losses(t)
			p[j] = x - h
			r0, t0 := lr.losses(t)
			p[j] = x
			dReason[n][j], dTool[n][j] = (r1-r0)/(2*h), (t1-t0)/(2*h)
		}
	}
	// relErr is ‖g − ref‖ / ‖ref‖ over the adapters of role q.
	relErr := func(g map[string]*runtime.Tensor, q int, ref func(n string, j int) float64) (float64, float64) {
		var num, den float64
		for _, n := range def.names {
			if def.roleOf[n] != q {
				continue
			}
			for j, v := range g[n].Floats() {
				d := v - ref(n, j)
				num += d * d
				den += ref(n, j) * ref(n, j)
			}
		}
		return math.Sqrt(num / den), math.Sqrt(den)
	}
	roleName := []string{"reason", "tool"}
	const tol = 2e-5 // float32 train graph against a float64 reference
	for q := range 2 {
		own, other := dReason, dTool
		if q == RoleTool {
			own, other = dTool, dReason
		}
		e, nOwn := relErr(gStrict, q, func(n string, j int) float64 { return own[n][j] })
		t.Logf("strict, %s adapter vs d L_%s: relative error %.2g", roleName[q], roleName[q], e)
		if e > tol {
			t.Errorf("strict: the %s adapter's gradient is off d L_%s / d θ by %.3g relative (tolerance %g)", roleName[q], roleName[q], e, tol)
		}
		e, _ = relErr(gDef, q, func(n string, j int) float64 { return own[n][j] + other[n][j] })
		t.Logf("default, %s adapter vs d L: relative error %.2g", roleName[q], e)
		if e > tol {
			t.Errorf("default: the %s adapter's gradient is off d L / d θ by %.3g relative (tolerance %g)", roleName[q], e, tol)
		}
		_, nCross := relErr(gDef, q, func(n string, j int) float64 { return other[n][j] })
		t.Logf("default, %s adapter: ‖cross-role term‖ %.3g, ‖own-role term‖ %.3g (ratio %.2f)", roleName[q], nCross, nOwn, nCross/nOwn)
		if nCross < 20*tol*nOwn {
			t.Errorf("%s adapter: the cross-role term (%.3g) is negligible next to the own-role one (%.3g): the sequences do not test isolation", roleName[q], nCross, nOwn)
		}
	}

	// Exactly zero: scaling the other role's weights leaves strict
	// gradients bit-identical and changes the default's.
	for q := range 2 {
		w2 := make([][]float64, len(w))
		for i, tj := range trajs {
			w2[i] = append([]float64(nil), w[i]...)
			for p := range w2[i] {
				if tj.Roles[p] != int64(q) {
					w2[i][p] *= 3
				}
			}
		}
		s2, _, _, err := strict.gradients(trajs, w2, adv, lr.old, lr.ref, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		d2, _, _, err := def.gradients(trajs, w2, adv, lr.old, lr.ref, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defChanged := false
		for _, n := range def.names {
			if def.roleOf[n] != q {
				continue
			}
			a, b := gStrict[n].Floats(), s2[n].Floats()
			for i := range a {
				if a[i] != b[i] {
					t.Fatalf("strict: %s[%d] moved from %v to %v when only the other role's token weights changed", n, i, a[i], b[i])
				}
			}
			for i, x := range d2[n].Floats() {
				defChanged = defChanged || x != gDef[n].Floats()[i]
			}
		}
		if !defChanged {
			t.Errorf("default: the %s adapter's gradient ignored the other role's losses", roleName[q])
		}
	}

	// The default's cross-role magnitude with the loss on reasoning tokens
	// only (--grad-tokens reason under dual): the tool adapter's B
	// gradient next to the reasoning adapter's, from the reference.
	var bReason, bTool float64
	for _, tg := range def.man.LoRA.Targets {
		for _, x := range dReason[tg.B["reason"]] {
			bReason += x * x
		}
		for _, x := range dReason[tg.B["tool"]] {
			bTool += x * x
		}
	}
	t.Logf("default, loss on reasoning tokens only: |d/dB_tool| %.3g, |d/dB_reason| %.3g (ratio %.2f)", math.Sqrt(bTool), math.Sqrt(bReason), math.Sqrt(bTool/bReason))
}

// TestIsolationConfig: strict needs an adapter per role.
func TestIsolationConfig(t *testing.T) {
	c := DefaultConfig()
	c.Isolation = IsolationStrict
	if err := c.Validate(); err != nil {
		t.Fatalf("dual + strict: %v", err)
	}
	c.Variant = VariantSingle
	if err := c.Validate(); err == nil {
		t.Error("single + strict accepted")
	}
	c = DefaultConfig()
	c.Isolation = "loose"
	if err := c.Validate(); err == nil {
		t.Error("isolation loose accepted")
	}
}
