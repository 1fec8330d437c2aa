package compiler_test

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/passes"
	"github.com/dartc/dartc/runtime"
)

// tinyCompiled synthesizes the tiny Qwen2-shaped model and compiles it.
func tinyCompiled(t testing.TB, layers int, opts synth.Options) (string, *manifest.Manifest) {
	t.Helper()
	cfg, err := qwen2.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	if layers > 0 {
		cfg.Layers = layers
	}
	dir := t.TempDir()
	res, err := synth.Synthesize(cfg, filepath.Join(dir, "src"), opts)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	man, err := compiler.Compile(res.ModelPath, out, compiler.Options{Rank: 4, Alpha: 8, Check: true})
	if err != nil {
		t.Fatal(err)
	}
	return out, man
}

func f32(t testing.TB, shape []int64, v []float32) *runtime.Tensor {
	x, err := runtime.FromFloat32(shape, v)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func i64(t testing.TB, shape []int64, v []int64) *runtime.Tensor {
	x, err := runtime.FromInt64(shape, v)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// batch is a left-padded batch of two sequences with mixed roles.
type batch struct {
	b, s                 int
	ids, mask, pos, role []int64
}

func newBatch(rng *rand.Rand, vocab int64, s int, roleOf func(i int) int64) batch {
	bt := batch{b: 2, s: s}
	for r := 0; r < 2; r++ {
		pad := 2 * r
		p := int64(0)
		for i := 0; i < s; i++ {
			bt.ids = append(bt.ids, rng.Int64N(vocab))
			bt.role = append(bt.role, roleOf(r*s+i))
			if i < pad {
				bt.mask, bt.pos = append(bt.mask, 0), append(bt.pos, 1)
				continue
			}
			bt.mask, bt.pos = append(bt.mask, 1), append(bt.pos, p)
			p++
		}
	}
	return bt
}

func (bt batch) feeds(t testing.TB) map[string]*runtime.Tensor {
	sh := []int64{int64(bt.b), int64(bt.s)}
	return map[string]*runtime.Tensor{
		"input_ids": i64(t, sh, bt.ids), "attention_mask": i64(t, sh, bt.mask),
		"position_ids": i64(t, sh, bt.pos), passes.RoleInput: i64(t, sh, bt.role),
	}
}

// lossFeeds adds GRPO-head inputs: weights on every real next token.
func (bt batch) lossFeeds(t testing.TB, rng *rand.Rand, in map[string]*runtime.Tensor) {
	n := bt.b * bt.s
	w, adv, zero := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range w {
		if bt.mask[i] == 1 && i%bt.s != bt.s-1 {
			w[i] = 1
		}
		adv[i] = float32(2*rng.Float64() - 1)
	}
	sh := []int64{int64(bt.b), int64(bt.s)}
	in["token_weights"], in["advantages"] = f32(t, sh, w), f32(t, sh, adv)
	in["old_logprobs"], in["ref_logprobs"] = f32(t, sh, zero), f32(t, sh, zero)
	in["clip_low"], in["clip_high"], in["kl_coef"] = f32(t, nil, []float32{0.2}), f32(t, nil, []float32{0.2}), f32(t, nil, []float32{0.05})
	in["entropy_coeff"] = f32(t, nil, []float32{0})
}

// TestGradientIsolation: with every position in one role, every gradient
// of the other role's adapters is exactly zero, and this role's are not.
func TestGradientIsolation(t *testing.T) {
	orttest.Init(t)
	out, man := tinyCompiled(t, 0, synth.Options{Seed: 2})
	s := session(t, filepath.Join(out, "train.onnx"))
	rng := rand.New(rand.NewPCG(1, 2))
	for active := range man.LoRA.Roles {
		bt := newBatch(rng, man.Model.Vocab, 7, func(int) int64 { return int64(active) })
		in := bt.feeds(t)
		bt.lossFeeds(t, rng, in)
		for k, v := range randomAdapters(t, man, rng, man.LoRA.Roles...) {
			in[k] = v
		}
		got := run(t, s, in)
		for _, tg := range man.LoRA.Targets {
			for k, role := range man.LoRA.Roles {
				for _, name := range []string{tg.A[role], tg.B[role]} {
					norm := 0.0
					for _, v := range got[passes.GradPrefix+name].Floats() {
						norm += v * v
					}
					if k != active && norm != 0 {
						t.Fatalf("every position is %s, yet grad.%s has norm² %g", man.LoRA.Roles[active], name, norm)
					}
					if k == active && norm == 0 {
						t.Fatalf("grad.%s is zero for the active role", name)
					}
				}
			}
		}
	}
}

// TestLogprobsAgree: logprobs.onnx, train.onnx's logprobs output and the
// log-softmax of decode.onnx's last-position logits on every prefix give
// the same per-token log-probs, with random adapters and mixed roles.
func TestLogprobsAgree(t *testing.T) {
	orttest.Init(t)
	out, man := tinyCompiled(t, 0, synth.Options{Seed: 4})
	rng := rand.New(rand.NewPCG(5, 6))
	bt := newBatch(rng, man.Model.Vocab, 6, func(i int) int64 { return int64(i/2) % 2 })
	adapters := randomAdapters(t, man, rng, man.LoRA.Roles...)
	withAdapters := func(in map[string]*runtime.Tensor) map[string]*runtime.Tensor {
		for k, v := range adapters {
			in[k] = v
		}
		return in
	}
	lp := run(t, session(t, filepath.Join(out, "logprobs.onnx")), withAdapters(bt.feeds(t)))["logprobs"].Floats()
	in := withAdapters(bt.feeds(t))
	bt.lossFeeds(t, rng, in)
	tr := run(t, session(t, filepath.Join(out, "train.onnx")), in)["logprobs"].Floats()
	dec := session(t, filepath.Join(out, "decode.onnx"))
	worst := 0.0
	for r := 0; r < bt.b; r++ {
		for p := 0; p < bt.s-1; p++ {
			i := r*bt.s + p
			if bt.mask[i] == 0 {
				continue
			}
			// decode.onnx on the prefix ending at p (no cache in this export).
			sh := []int64{1, int64(p + 1)}
			pre := map[string]*runtime.Tensor{
				"input_ids": i64(t, sh, bt.ids[r*bt.s:i+1]), "attention_mask": i64(t, sh, bt.mask[r*bt.s:i+1]),
				"position_ids": i64(t, sh, bt.pos[r*bt.s:i+1]), passes.RoleInput: i64(t, sh, bt.role[r*bt.s:i+1]),
			}
			logits := run(t, dec, withAdapters(pre))["logits"].Floats()
			m := math.Inf(-1)
			for _, v := range logits {
				m = math.Max(m, v)
			}
			z := 0.0
			for _, v := range logits {
				z += math.Exp(v - m)
			}
			want := logits[bt.ids[i+1]] - m - math.Log(z)
			for _, got := range []float64{lp[i], tr[i]} {
				worst = math.Max(worst, math.Abs(got-want))
			}
			if d := math.Abs(lp[i] - tr[i]); d > 1e-5 {
				t.Fatalf("row %d pos %d: logprobs.onnx %g, train.onnx %g", r, p, lp[i], tr[i])
			}
		}
	}
	t.Logf("max |log-prob − log-softmax(decode logits)| = %.3g", worst)
	if worst > 1e-5 {
		t.Fatalf("log-probs disagree with decode.onnx by %.3g > 1e-5", worst)
	}
}

// TestTrainGraphGrowsLinearly: the train graph adds the same number of
// nodes per layer.
func TestTrainGraphGrowsLinearly(t *testing.T) {
	var counts []int
	for layers := 1; layers <= 4; layers++ {
		out, _ := tinyCompiled(t, layers, synth.Options{})
		m, err := ir.Load(filepath.Join(out, "train.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		counts = append(counts, len(m.Graph.Nodes))
	}
	per := counts[1] - counts[0]
	for i := 2; i < len(counts); i++ {
		if counts[i]-counts[i-1] != per {
			t.Fatalf("train.onnx nodes for 1..4 layers: %v; the step is not constant", counts)
		}
	}
	t.Logf("train.onnx nodes for 1..4 layers: %v (%d per layer)", counts, per)
}

func TestAutodiffWithoutAdaptersIsAnError(t *testing.T) {
	m, err := ir.Load(filepath.Join(scatterDir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	err = passes.Autodiff(passes.NewState(m, passes.Options{}))
	if err == nil || !strings.Contains(err.Error(), "dual-lora") {
		t.Fatalf("got %v", err)
	}
}
