package grpo

import (
	"context"
	"math"
	"testing"
)

// TestEntropyCoeffInLoss: entropy_coeff reaches train.onnx. Two runs that
// differ only in it sample the same rollouts (same seed, same adapters at
// step 0); with token-mean aggregation Σ w·H is the mean entropy of the
// loss tokens, which the step reports, so the losses must differ by
// exactly −entropy_coeff·entropy, and the gradient must change.
func TestEntropyCoeffInLoss(t *testing.T) {
	dir := toyModel(t)
	step := func(coef float64) Metrics {
		cfg := toyTrainConfig()
		cfg.EntropyCoeff = coef
		tr, err := New(Options{Model: dir, Run: t.TempDir(), Config: cfg, Data: toyData(5),
			Roller: newToyRoller(t, dir, 10), Reward: lowTokenReward})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		met, err := tr.Step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return met
	}
	const coef = 0.05
	base, with := step(0), step(coef)
	if base.Entropy <= 0 || math.Abs(base.Entropy-with.Entropy) > 1e-6*base.Entropy {
		t.Fatalf("entropy %g without the bonus, %g with it: the runs differ before the loss", base.Entropy, with.Entropy)
	}
	if d, want := with.Loss-base.Loss, -coef*base.Entropy; math.Abs(d-want) > 1e-5 {
		t.Fatalf("loss changed by %.8f with entropy_coeff %g, want −coeff·entropy = %.8f", d, coef, want)
	}
	if with.GradNorm == base.GradNorm {
		t.Fatalf("gradient norm %g with and without the entropy bonus", with.GradNorm)
	}
	t.Logf("entropy %.4f: loss %.6f → %.6f, grad norm %.4g → %.4g", base.Entropy, base.Loss, with.Loss, base.GradNorm, with.GradNorm)
}
