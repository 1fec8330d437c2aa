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
			t.Logf("%s step %d: loss %.5f, gradient norm %.4g", prec, i+1, met.Loss, met.GradNorm)
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
