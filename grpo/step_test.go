package grpo

import (
	"context"
	"math"
	"testing"
)

// TestFirstStepRatioOneKLZero: at step 0 the adapters' B are zero, so the
// policy is the base (KL = 0), and the first update's adapters are the
// sampling ones, so train.onnx's ratio against decode.onnx's sampled
// log-probs is 1 and nothing is clipped. The loss is then −Σᵢ Aᵢ·nᵢ/N
// (token-mean, ratio 1, KL 0), computed here from the advantages alone.
func TestFirstStepRatioOneKLZero(t *testing.T) {
	dir := toyModel(t)
	for _, variant := range []string{VariantDual, VariantSingle, VariantTwoAgent, VariantDual + "/" + IsolationStrict} {
		t.Run(variant, func(t *testing.T) {
			cfg := toyTrainConfig()
			cfg.Variant = variant
			if variant == VariantDual+"/"+IsolationStrict {
				cfg.Variant, cfg.Isolation = VariantDual, IsolationStrict
			}
			roller := newToyRoller(t, dir, 10)
			var trajsSeen int
			tr, err := New(Options{Model: dir, Run: t.TempDir(), Config: cfg, Data: toyData(5), Roller: roller, Reward: lowTokenReward})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			met, err := tr.Step(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			trajsSeen = roller.calls
			if trajsSeen != 1 {
				t.Fatalf("roller called %d times", trajsSeen)
			}
			t.Logf("max |ratio−1| %.3g, clip %g, KL %.3g, loss %.6f, reward %.3f±%.3f", met.RatioMaxDev, met.ClipFrac, met.KL, met.Loss, met.RewardMean, met.RewardStd)
			if met.RatioMaxDev > 1e-4 {
				t.Errorf("max |ratio − 1| = %g at the first inner step, want ≤ 1e-4", met.RatioMaxDev)
			}
			if met.ClipFrac != 0 {
				t.Errorf("clip fraction %g at the first inner step, want 0", met.ClipFrac)
			}
			if math.Abs(met.KL) > 1e-6 {
				t.Errorf("KL %g at step 0, want 0 (B = 0)", met.KL)
			}
			if met.RewardStd == 0 {
				t.Fatal("all rewards equal: the loss check would be vacuous")
			}
			// Independent loss: advantages written out with the sample
			// variance, loss = −Σ Aᵢ nᵢ / Σ nᵢ.
			want, total := 0.0, 0.0
			for g := 0; g < len(roller.last); g += cfg.Group {
				var rs []float64
				for _, tj := range roller.last[g : g+cfg.Group] {
					rs = append(rs, lowTokenReward(tj))
				}
				mean := (rs[0] + rs[1] + rs[2] + rs[3]) / 4
				v := 0.0
				for _, r := range rs {
					v += (r - mean) * (r - mean) / 3
				}
				for k, tj := range roller.last[g : g+cfg.Group] {
					n := float64(tj.PolicyTokens())
					want -= (rs[k] - mean) / (math.Sqrt(v) + 1e-6) * n
					total += n
				}
			}
			want /= total
			if math.Abs(met.Loss-want) > 1e-5 {
				t.Errorf("first-step loss %.8f, want −ΣAn/N = %.8f", met.Loss, want)
			}
		})
	}
}
