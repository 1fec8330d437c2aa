package compiler_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/qwen2ref"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/passes"
	"github.com/dartc/dartc/runtime"
)

// compileTiny synthesizes the tiny preset with sopts and compiles it with
// copts (rank 4, alpha 8 unless set).
func compileTiny(t testing.TB, sopts synth.Options, copts compiler.Options) (string, *manifest.Manifest) {
	t.Helper()
	out, man, _ := compileTinyWeights(t, sopts, copts)
	return out, man
}

// compileTinyWeights is compileTiny that also returns the synthesized
// weights.
func compileTinyWeights(t testing.TB, sopts synth.Options, copts compiler.Options) (string, *manifest.Manifest, *synth.Result) {
	t.Helper()
	cfg, err := qwen2.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res, err := synth.Synthesize(cfg, filepath.Join(dir, "src"), sopts)
	if err != nil {
		t.Fatal(err)
	}
	if copts.Rank == 0 {
		copts.Rank, copts.Alpha = 4, 8
	}
	copts.Check = true
	out := filepath.Join(dir, "out")
	man, err := compiler.Compile(res.ModelPath, out, copts)
	if err != nil {
		t.Fatal(err)
	}
	return out, man, res
}

// graphSession opens one compiled graph with its manifest session settings.
func graphSession(t testing.TB, dir string, man *manifest.Manifest, graph string) *runtime.Session {
	t.Helper()
	spec := man.Graphs[graph]
	s, err := runtime.NewSession(filepath.Join(dir, spec.File), &runtime.Options{Config: spec.SessionConfig})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Destroy() })
	return s
}

func floatsOf(t testing.TB, dt string, shape []int64, v []float64) *runtime.Tensor {
	t.Helper()
	if dt == "float64" {
		x, err := runtime.FromFloat64(shape, v)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return f32(t, shape, f)
}

// adaptersOf draws random adapters (B non-zero) in the manifest's dtype.
func adaptersOf(t testing.TB, man *manifest.Manifest, rng *rand.Rand, scale float64) map[string]*runtime.Tensor {
	t.Helper()
	spec := man.Graphs[manifest.GraphTrain]
	out := map[string]*runtime.Tensor{}
	for _, name := range man.AdapterNames() {
		in := spec.Input(name)
		shape := []int64{in.Dims[0].Value, in.Dims[1].Value}
		v := make([]float64, shape[0]*shape[1])
		for i := range v {
			v[i] = rng.NormFloat64() * scale
		}
		out[name] = floatsOf(t, in.DType, shape, v)
	}
	return out
}

// TestMaskedPositionsStayFinite (issue 11, item 7): positions with zero
// weight — prompt, observation, padding — whose old and reference log-probs
// are extreme (an overflowing exp(ref − lp) and exp(lp − old)) with
// kl_coef 0 leave the loss and every gradient finite, and exactly equal to
// those of the same batch with ordinary values there.
func TestMaskedPositionsStayFinite(t *testing.T) {
	orttest.Init(t)
	out, man := compileTiny(t, synth.Options{Seed: 3}, compiler.Options{})
	s := graphSession(t, out, man, manifest.GraphTrain)
	rng := rand.New(rand.NewPCG(7, 8))
	bt := newBatch(rng, man.Model.Vocab, 9, func(i int) int64 { return int64(i/3) % 2 })
	in := bt.feeds(t)
	bt.lossFeeds(t, rng, in)
	for k, v := range randomAdapters(t, man, rng, man.LoRA.Roles...) {
		in[k] = v
	}
	in["kl_coef"] = f32(t, nil, []float32{0})
	w := in["token_weights"].Float32()
	for i := range w {
		if i%bt.s < 4 { // a prompt of four tokens per row
			w[i] = 0
		}
	}
	sane := run(t, s, in)
	n := bt.b * bt.s
	old, ref := make([]float32, n), make([]float32, n)
	masked := 0
	for i := range old {
		if w[i] == 0 {
			old[i], ref[i] = -1e4, 1e4
			masked++
		}
	}
	sh := []int64{int64(bt.b), int64(bt.s)}
	in["old_logprobs"], in["ref_logprobs"] = f32(t, sh, old), f32(t, sh, ref)
	got := run(t, s, in)
	for name, v := range got {
		for i, x := range v.Floats() {
			if math.IsNaN(x) || math.IsInf(x, 0) {
				t.Fatalf("%s[%d] = %g with extreme values on %d masked positions", name, i, x, masked)
			}
		}
		if name == passes.LossOutput || len(name) > len(passes.GradPrefix) && name[:len(passes.GradPrefix)] == passes.GradPrefix {
			if !slices.Equal(v.Floats(), sane[name].Floats()) {
				t.Fatalf("%s depends on the values at masked positions", name)
			}
		}
	}
}

// grpoRef is the GRPO loss written out in float64, with the k3 clamp and
// the entropy bonus, from per-position log-probs and entropies.
func grpoRef(lp, h, w, adv, old, ref []float64, clipLow, clipHigh, kl, ent float64) float64 {
	loss := 0.0
	for i := range lp {
		if w[i] == 0 {
			continue
		}
		r := math.Exp(lp[i] - old[i])
		c := math.Min(math.Max(r, 1-clipLow), 1+clipHigh)
		pg := math.Max(-adv[i]*r, -adv[i]*c)
		d := ref[i] - lp[i]
		k3 := math.Min(math.Max(math.Exp(d)-d-1, -10), 10)
		loss += w[i] * (pg + kl*k3 - ent*h[i])
	}
	return loss
}

// entropyOf is −Σ p log p of a logits row, in float64.
func entropyOf(logits []float64) float64 {
	m := math.Inf(-1)
	for _, v := range logits {
		m = math.Max(m, v)
	}
	z := 0.0
	for _, v := range logits {
		z += math.Exp(v - m)
	}
	lz := m + math.Log(z)
	h := 0.0
	for _, v := range logits {
		p := math.Exp(v - lz)
		h -= p * (v - lz)
	}
	return h
}

// refModel is an independent float64 forward: the plain-loop Qwen2 of
// qwen2ref with the dual LoRA written out (y += s·((x·A_k)·B_k) for the
// position's role k).
type refModel struct {
	model *qwen2ref.Model
	man   *manifest.Manifest
	bt    batch
	// adapter[layer][kind] = names of A and B per role index.
	a, b map[int]map[qwen2.TargetKind][]string
}

func newRefModel(t *testing.T, cfg qwen2.Config, weights map[string][]float64, man *manifest.Manifest, bt batch) *refModel {
	t.Helper()
	m, err := qwen2ref.New(cfg, weights)
	if err != nil {
		t.Fatal(err)
	}
	r := &refModel{model: m, man: man, bt: bt, a: map[int]map[qwen2.TargetKind][]string{}, b: map[int]map[qwen2.TargetKind][]string{}}
	for _, tg := range man.LoRA.Targets {
		k, err := qwen2.ParseTargetKind(tg.Kind)
		if err != nil {
			t.Fatal(err)
		}
		if r.a[tg.Layer] == nil {
			r.a[tg.Layer], r.b[tg.Layer] = map[qwen2.TargetKind][]string{}, map[qwen2.TargetKind][]string{}
		}
		for _, role := range man.LoRA.Roles {
			r.a[tg.Layer][k] = append(r.a[tg.Layer][k], tg.A[role])
			r.b[tg.Layer][k] = append(r.b[tg.Layer][k], tg.B[role])
		}
	}
	return r
}

// forward returns the log-prob of the next token and the entropy of the
// next-token distribution at every position (0 at the last and on padding).
func (r *refModel) forward(t *testing.T, params map[string][]float64) (lp, h []float64) {
	t.Helper()
	bt, V := r.bt, int(r.man.Model.Vocab)
	scale := r.man.LoRA.Scale
	rank := r.man.LoRA.Rank
	m := *r.model
	m.Delta = func(l int, k qwen2.TargetKind, row, pos int, x []float64) []float64 {
		role := bt.role[row*bt.s+pos]
		a, b := params[r.a[l][k][role]], params[r.b[l][k][role]]
		out := len(b) / rank
		hid := make([]float64, rank)
		for i, xi := range x {
			for j := range hid {
				hid[j] += xi * a[i*rank+j]
			}
		}
		y := make([]float64, out)
		for j, hj := range hid {
			for o := range y {
				y[o] += scale * hj * b[j*out+o]
			}
		}
		return y
	}
	var ids, mask, pos [][]int64
	for row := 0; row < bt.b; row++ {
		ids = append(ids, bt.ids[row*bt.s:(row+1)*bt.s])
		mask = append(mask, bt.mask[row*bt.s:(row+1)*bt.s])
		pos = append(pos, bt.pos[row*bt.s:(row+1)*bt.s])
	}
	logits, _, err := m.Forward(ids, mask, pos, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := bt.b * bt.s
	lp, h = make([]float64, n), make([]float64, n)
	for i := range n {
		if i%bt.s == bt.s-1 || bt.mask[i] == 0 {
			continue
		}
		row := logits[i*V : (i+1)*V]
		lp[i] = logSoftmaxAt(row, int(bt.ids[i+1]))
		h[i] = entropyOf(row)
	}
	return lp, h
}

func logSoftmaxAt(row []float64, k int) float64 {
	m := math.Inf(-1)
	for _, v := range row {
		m = math.Max(m, v)
	}
	z := 0.0
	for _, v := range row {
		z += math.Exp(v - m)
	}
	return row[k] - m - math.Log(z)
}

// TestGRPOHeadBranches (issue 11, item 8): on a compiled float64 model,
// weighted positions are placed on every branch of the GRPO loss — ratio
// clipped above (A > 0) and below (A < 0), the same ratios unclipped with
// the other sign of A, ratios inside the range, k3 above the clamp from
// both signs of ref − lp and inside it — with a non-zero entropy
// coefficient and with none (the two forms of the head's gradient), and
// the head split into chunks of 5 positions (several Loop iterations, a
// padded last one). The independent reference is the loss
// written out here in float64 over a plain-loop Qwen2 forward with the dual
// LoRA (qwen2ref): train.onnx's log-probs, entropies, k3, clip flags and
// loss must equal it, and its gradient must equal central differences of
// the reference loss along random directions.
func TestGRPOHeadBranches(t *testing.T) {
	orttest.Init(t)
	out, man, res := compileTinyWeights(t, synth.Options{Seed: 5, DType: synth.Float64},
		compiler.Options{HeadChunk: 5})
	train := graphSession(t, out, man, manifest.GraphTrain)
	rng := rand.New(rand.NewPCG(9, 10))
	bt := newBatch(rng, man.Model.Vocab, 12, func(i int) int64 { return int64(i/3) % 2 })
	cfg, err := qwen2.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	ref := newRefModel(t, cfg, res.Weights, man, bt)
	theta := adaptersOf(t, man, rng, 0.05)
	names := man.AdapterNames()
	plain := map[string][]float64{}
	for k, v := range theta {
		plain[k] = v.Floats()
	}
	lp0, h0 := ref.forward(t, plain)
	n := bt.b * bt.s
	sh := []int64{int64(bt.b), int64(bt.s)}

	// Both forms of the gradient: with the entropy bonus, and without it
	// (entropy_coeff 0, the head's shortcut), the entropy output still
	// computed.
	for _, ent := range []float64{0.07, 0} {
		t.Run(fmt.Sprintf("entropy_coeff=%g", ent), func(t *testing.T) {
			// Place each weighted position on a branch.
			const clipLow, clipHigh, kl = 0.2, 0.28, 0.3
			w, adv, old, refLP := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
			type ratioCase struct{ r, a float64 }
			ratios := []ratioCase{{1.5, 0.7}, {1.5, -0.7}, {0.5, -0.9}, {0.5, 0.9}, {1.05, 0.4}, {0.9, -0.3}}
			klCases := []float64{3, -14, 0.4, -0.25} // ref − lp: clamped, clamped, inside, inside
			wantClipped := make([]bool, n)
			weighted := 0
			for i := range w {
				if bt.mask[i] == 0 || i%bt.s == bt.s-1 || i%bt.s == 4 {
					continue // padding, the last position, a masked "prompt" token
				}
				rc := ratios[weighted%len(ratios)]
				w[i] = 0.5 + rng.Float64()
				adv[i] = rc.a
				old[i] = lp0[i] - math.Log(rc.r)
				refLP[i] = lp0[i] + klCases[weighted%len(klCases)]
				c := math.Min(math.Max(rc.r, 1-clipLow), 1+clipHigh)
				wantClipped[i] = -rc.a*c > -rc.a*rc.r
				weighted++
			}
			refLoss := func(lp, h []float64) float64 {
				return grpoRef(lp, h, w, adv, old, refLP, clipLow, clipHigh, kl, ent)
			}
			in := bt.feeds(t)
			for k, v := range theta {
				in[k] = v
			}
			in["token_weights"], in["advantages"] = floatsOf(t, "float64", sh, w), floatsOf(t, "float64", sh, adv)
			in["old_logprobs"], in["ref_logprobs"] = floatsOf(t, "float64", sh, old), floatsOf(t, "float64", sh, refLP)
			for k, v := range map[string]float64{"clip_low": clipLow, "clip_high": clipHigh, "kl_coef": kl, "entropy_coeff": ent} {
				in[k] = floatsOf(t, "float64", nil, []float64{v})
			}
			got := run(t, train, in)

			// Per-position outputs, branch by branch.
			cl, kk, ra, lpT, hT := got["clipped"].Floats(), got["kl"].Floats(), got["ratio"].Floats(), got["logprobs"].Floats(), got["entropy"].Floats()
			var sawHigh, sawLow, sawClampUp, sawClampDown bool
			for i := range w {
				if w[i] == 0 {
					continue
				}
				if math.Abs(lpT[i]-lp0[i]) > 1e-9 || math.Abs(hT[i]-h0[i]) > 1e-9 {
					t.Fatalf("pos %d: train.onnx log-prob %.12g entropy %.12g, reference %.12g %.12g", i, lpT[i], hT[i], lp0[i], h0[i])
				}
				if (cl[i] == 1) != wantClipped[i] {
					t.Fatalf("pos %d: clipped = %g, want %v (ratio %g, A %g)", i, cl[i], wantClipped[i], ra[i], adv[i])
				}
				sawHigh = sawHigh || wantClipped[i] && ra[i] > 1
				sawLow = sawLow || wantClipped[i] && ra[i] < 1
				d := refLP[i] - lp0[i]
				if k3 := math.Exp(d) - d - 1; k3 > 10 {
					sawClampUp = sawClampUp || d > 0
					sawClampDown = sawClampDown || d < 0
					if kk[i] != 10 {
						t.Fatalf("pos %d: kl = %g, want the clamp 10 (k3 %g)", i, kk[i], k3)
					}
				} else if math.Abs(kk[i]-k3) > 1e-9 {
					t.Fatalf("pos %d: kl = %g, want %g", i, kk[i], k3)
				}
			}
			if !sawHigh || !sawLow || !sawClampUp || !sawClampDown {
				t.Fatalf("branches not all exercised: clipped above %v, below %v, k3 clamp from ref > lp %v, from ref < lp %v",
					sawHigh, sawLow, sawClampUp, sawClampDown)
			}
			want := refLoss(lp0, h0)
			if l := got["loss"].Floats()[0]; math.Abs(l-want) > 1e-9*math.Abs(want) {
				t.Fatalf("loss %.15g, reference %.15g", l, want)
			}

			// Gradients: central differences of the reference loss along random
			// directions, over every adapter at once and over single tensors.
			const step = 1e-5
			dirs := [][]string{names, names, names, {names[0]}, {names[len(names)-1]}, {names[len(names)/2]}}
			worst := 0.0
			for k, set := range dirs {
				u := map[string][]float64{}
				dot := 0.0
				for _, name := range set {
					g := got[passes.GradPrefix+name].Floats()
					v := make([]float64, len(g))
					for i := range v {
						v[i] = rng.NormFloat64()
						dot += g[i] * v[i]
					}
					u[name] = v
				}
				at := func(sign float64) float64 {
					p := map[string][]float64{}
					for name, base := range plain {
						p[name] = base
						if v, ok := u[name]; ok {
							moved := make([]float64, len(base))
							for i := range base {
								moved[i] = base[i] + sign*step*v[i]
							}
							p[name] = moved
						}
					}
					return refLoss(ref.forward(t, p))
				}
				fd := (at(1) - at(-1)) / (2 * step)
				rel := math.Abs(fd-dot) / math.Max(math.Abs(fd), 1e-12)
				worst = math.Max(worst, rel)
				if rel > 1e-6 {
					t.Fatalf("direction %d (%d tensors): ⟨grad, u⟩ = %.10g, central difference of the reference %.10g (relative %.2g)", k, len(set), dot, fd, rel)
				}
			}
			t.Logf("%d weighted positions on every branch; loss %.10g; worst directional-derivative error %.2g", weighted, want, worst)
		})
	}
}

// TestLogprobsEntropyOnRequest: logprobs.onnx compiled with
// LogprobsEntropy and train.onnx give the entropy of the log-softmax of
// decode.onnx's last-position logits on every prefix.
func TestLogprobsEntropyOnRequest(t *testing.T) {
	orttest.Init(t)
	out, man := compileTiny(t, synth.Options{Seed: 6}, compiler.Options{LogprobsEntropy: true, HeadChunk: 4})
	rng := rand.New(rand.NewPCG(11, 12))
	bt := newBatch(rng, man.Model.Vocab, 7, func(i int) int64 { return int64(i/2) % 2 })
	adapters := randomAdapters(t, man, rng, man.LoRA.Roles...)
	in := bt.feeds(t)
	for k, v := range adapters {
		in[k] = v
	}
	hl := run(t, graphSession(t, out, man, manifest.GraphLogprobs), in)["entropy"].Floats()
	bt.lossFeeds(t, rng, in)
	in["entropy_coeff"] = f32(t, nil, []float32{0.01})
	ht := run(t, graphSession(t, out, man, manifest.GraphTrain), in)["entropy"].Floats()
	dec := graphSession(t, out, man, manifest.GraphDecode)
	worst := 0.0
	for r := 0; r < bt.b; r++ {
		for p := 0; p < bt.s-1; p++ {
			i := r*bt.s + p
			if bt.mask[i] == 0 {
				continue
			}
			psh := []int64{1, int64(p + 1)}
			pre := map[string]*runtime.Tensor{
				"input_ids": i64(t, psh, bt.ids[r*bt.s:i+1]), "attention_mask": i64(t, psh, bt.mask[r*bt.s:i+1]),
				"position_ids": i64(t, psh, bt.pos[r*bt.s:i+1]), passes.RoleInput: i64(t, psh, bt.role[r*bt.s:i+1]),
			}
			for k, v := range adapters {
				pre[k] = v
			}
			want := entropyOf(run(t, dec, pre)["logits"].Floats())
			for _, got := range []float64{hl[i], ht[i]} {
				worst = math.Max(worst, math.Abs(got-want)/want)
			}
		}
	}
	t.Logf("max relative |entropy − entropy(decode logits)| = %.3g", worst)
	if worst > 1e-5 {
		t.Fatalf("entropies disagree with decode.onnx's logits by %.3g relative", worst)
	}
}

// TestHeadsComputeNoFullLogits (issue 14): in logprobs.onnx and train.onnx
// of every linear form the lm_head weight is read only inside the Loop body
// that projects one chunk of positions at a time, so no [batch, seq, vocab]
// tensor exists; logprobs.onnx has the entropy output only when asked for.
func TestHeadsComputeNoFullLogits(t *testing.T) {
	orttest.Init(t)
	for _, form := range []synth.LinearForm{synth.TorchScript, synth.Dynamo, synth.Gemm} {
		t.Run(form.String(), func(t *testing.T) {
			out, man := compileTiny(t, synth.Options{Seed: 1, LinearForm: form}, compiler.Options{})
			if man.Graphs[manifest.GraphLogprobs].Output(passes.EntropyOutput) != nil {
				t.Error("logprobs.onnx has an entropy output without LogprobsEntropy")
			}
			for _, g := range []string{"logprobs.onnx", "train.onnx"} {
				m, err := ir.Load(filepath.Join(out, g))
				if err != nil {
					t.Fatal(err)
				}
				vocab := man.Model.Vocab
				loops := 0
				for _, n := range m.Graph.Nodes {
					if n.OpType == "Loop" {
						loops++
						continue
					}
					if n.OpType == "Gather" { // the embedding lookup
						continue
					}
					for _, in := range n.Inputs {
						if w := m.Graph.Initializer(in); w != nil && slices.Contains(w.Dims, vocab) {
							t.Errorf("%s: %s reads the vocabulary-sized weight %s %v outside the chunk loop", g, n, in, w.Dims)
						}
					}
				}
				if loops != 1 {
					t.Errorf("%s: %d Loop nodes, want the one chunk loop", g, loops)
				}
			}
		})
	}
}

// TestEntropyShortcutPeaked: with entropy_coeff 0 the GRPO head reads the
// entropy off its gradient product (H = −lp − rowsum(rows·G)), a difference
// of terms of the logits' size. On peaked distributions (the final norm's
// weight ×40: logits near 100) it must stay ≥ 0 and within a few float32
// steps at that size of the full −Σ p·log p (entropy_coeff > 0, tolerance
// 1e-4); it came out negative at 3 positions before the clamp.
func TestEntropyShortcutPeaked(t *testing.T) {
	orttest.Init(t)
	cfg, err := qwen2.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res, err := synth.Synthesize(cfg, filepath.Join(dir, "src"), synth.Options{Seed: 3, Storage: synth.StorageInline})
	if err != nil {
		t.Fatal(err)
	}
	m, err := ir.Load(res.ModelPath)
	if err != nil {
		t.Fatal(err)
	}
	for i, x := range m.Graph.Initializers {
		if x.Name == "model.norm.weight" {
			vals, err := x.Float64s()
			if err != nil {
				t.Fatal(err)
			}
			f := make([]float32, len(vals))
			for k, v := range vals {
				f[k] = float32(40 * v)
			}
			m.Graph.Initializers[i] = ir.NewTensorF32(x.Name, x.Dims, f)
		}
	}
	src := filepath.Join(dir, "peaked", "model.onnx")
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := ir.Save(m, src, ir.EmitOptions{}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	man, err := compiler.Compile(src, out, compiler.Options{Rank: 4, Alpha: 8, Check: true})
	if err != nil {
		t.Fatal(err)
	}
	tr := graphSession(t, out, man, manifest.GraphTrain)
	rng := rand.New(rand.NewPCG(5, 6))
	bt := newBatch(rng, man.Model.Vocab, 12, func(i int) int64 { return int64(i/3) % 2 })
	in := bt.feeds(t)
	for k, v := range randomAdapters(t, man, rng, man.LoRA.Roles...) {
		in[k] = v
	}
	bt.lossFeeds(t, rng, in)
	h0 := run(t, tr, in)["entropy"].Floats()
	in["entropy_coeff"] = f32(t, nil, []float32{1e-3})
	h1 := run(t, tr, in)["entropy"].Floats()
	worst, small := 0.0, 0
	for i := range h0 {
		if bt.mask[i] == 0 || i%bt.s == bt.s-1 {
			continue
		}
		if h1[i] < 1e-4 {
			small++
		}
		if h0[i] < 0 {
			t.Errorf("position %d: entropy %g < 0 with entropy_coeff 0 (full form %g)", i, h0[i], h1[i])
		}
		worst = math.Max(worst, math.Abs(h0[i]-h1[i]))
	}
	t.Logf("%d positions with entropy below 1e-4; worst |H shortcut − H full| %.3g", small, worst)
	if small == 0 {
		t.Fatal("no peaked position: the case does not test the shortcut's rounding")
	}
	if worst > 1e-4 {
		t.Errorf("entropy shortcut off by %.3g (a float32 step at |logit| ≈ 100 is 7.6e-6)", worst)
	}
}
