package grpo

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/passes/kernels"
	"github.com/dartc/dartc/runtime"
)

// TestStepsWithLowPrecisionGraphs: the trainer runs GRPO steps on graphs
// compiled --precision fp16 and bf16 for the CPU provider as on float32
// ones (their inputs and outputs are float32: adapters, gradients and
// AdamW state stay float32); the loss and gradients are finite and the
// adapters move.
func TestStepsWithLowPrecisionGraphs(t *testing.T) {
	orttest.Init(t)
	root := t.TempDir()
	res, err := synth.Synthesize(toyConfig, filepath.Join(root, "src"), synth.Options{KVCache: true, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	for _, prec := range []string{"fp16", "bf16"} {
		dir := filepath.Join(root, prec)
		if _, err := compiler.Compile(res.ModelPath, dir, compiler.Options{Rank: 4, Alpha: 8, Seed: 3, Precision: prec, Provider: kernels.CPU}); err != nil {
			t.Fatal(err)
		}
		cfg := toyTrainConfig()
		cfg.Steps = 2
		tr, err := New(Options{Model: dir, Run: filepath.Join(root, "run-"+prec), Config: cfg, Data: toyData(5),
			Roller: newToyRoller(t, dir, 10), Reward: lowTokenReward})
		if err != nil {
			t.Fatal(err)
		}
		before := copyAdapters(t, adaptersOf(t, tr))
		for i := 0; i < cfg.Steps; i++ {
			met, err := tr.Step(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if math.IsNaN(met.Loss) || math.IsInf(met.Loss, 0) || !(met.GradNorm > 0) || math.IsInf(met.GradNorm, 0) {
				t.Fatalf("%s step %d: loss %g, gradient norm %g", prec, i+1, met.Loss, met.GradNorm)
			}
			t.Logf("%s step %d: loss %.5f, gradient norm %.4g, loss scale %g", prec, i+1, met.Loss, met.GradNorm, met.LossScale)
			if (met.LossScale > 0) != (prec == "fp16") {
				t.Errorf("%s step %d: loss scale %g (float16 graphs only have one)", prec, i+1, met.LossScale)
			}
		}
		moved := 0
		for name, a := range adaptersOf(t, tr) {
			if a.DType() != runtime.Float32 {
				t.Errorf("%s: adapter %s is %v", prec, name, a.DType())
			}
			x, y := before[name], a.Floats()
			for i := range x {
				if x[i] != y[i] {
					moved++
					break
				}
			}
		}
		if moved == 0 {
			t.Errorf("%s: no adapter changed in %d steps", prec, cfg.Steps)
		}
		tr.Close()
	}
}

func copyAdapters(t *testing.T, ad map[string]*runtime.Tensor) map[string][]float64 {
	out := map[string][]float64{}
	for n, a := range ad {
		out[n] = append([]float64(nil), a.Floats()...)
	}
	return out
}

// TestLossScaleHalvesOnOverflow: with a float16 train graph, gradients
// that overflow under the loss scale skip the update and halve the scale
// instead of counting toward max_nonfinite. Here old log-probs 20 nats too
// low give finite gradients of about 1e8, which a scale of 1e32 takes past
// float32 (the CPU provider's float16 graph computes most of its backward
// in float32). A divergence the scale cannot cause — 60 nats, finite
// gradients whose norm overflows float32 — counts at once.
func TestLossScaleHalvesOnOverflow(t *testing.T) {
	orttest.Init(t)
	root := t.TempDir()
	res, err := synth.Synthesize(toyConfig, filepath.Join(root, "src"), synth.Options{KVCache: true, Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "fp16")
	if _, err := compiler.Compile(res.ModelPath, dir, compiler.Options{Rank: 4, Alpha: 8, Seed: 3, Precision: "fp16", Provider: kernels.CPU}); err != nil {
		t.Fatal(err)
	}
	cfg := toyTrainConfig()
	cfg.Steps, cfg.MaxNonFinite = 3, 1
	roller := newToyRoller(t, dir, 10)
	tr, err := New(Options{Model: dir, Run: filepath.Join(root, "run"), Config: cfg, Data: toyData(5), Roller: roller, Reward: lowTokenReward})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if got := tr.State().LossScale; got != initialLossScale {
		t.Fatalf("initial loss scale %g, want %d", got, initialLossScale)
	}
	const huge = 1e32
	tr.state.LossScale = huge
	roller.corrupt = staleOldLogprobs(20)
	for i := 1; i <= cfg.Steps; i++ {
		met, err := tr.Step(context.Background())
		if err != nil {
			t.Fatalf("step %d: %v (overflows under a loss scale above 1 must not stop the run)", i, err)
		}
		st := tr.State()
		if want := huge / float64(int(1)<<i); st.LossScale != want || st.NonFiniteRun != 0 || st.Skipped != i || st.Update != 0 || !met.NonFinite {
			t.Fatalf("step %d: loss scale %g (want %g), in a row %d, skipped %d, updates %d, nonfinite %v (loss %g, grad norm %g)", i, st.LossScale, want, st.NonFiniteRun, st.Skipped, st.Update, met.NonFinite, met.Loss, met.GradNorm)
		}
	}
	roller.corrupt = staleOldLogprobs(60)
	tr.state.LossScale = 1 // nothing left to lower
	if _, err := tr.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := tr.State(); st.NonFiniteRun != 1 || st.LossScale != 1 {
		t.Fatalf("a gradient norm beyond float32: %d in a row, loss scale %g; want it counted, the scale left alone", st.NonFiniteRun, st.LossScale)
	}
}
