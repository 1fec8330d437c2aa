package grpo

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
			t.Logf("max |ratio−1| %.3g, clip %g, KL %.3g, loss %.6f, reward %.3f±%.3f", met.RatioMaxDev, met.ClipFrac, *met.KL, met.Loss, met.RewardMean, met.RewardStd)
			if met.RatioMaxDev > 1e-4 {
				t.Errorf("max |ratio − 1| = %g at the first inner step, want ≤ 1e-4", met.RatioMaxDev)
			}
			if met.ClipFrac != 0 {
				t.Errorf("clip fraction %g at the first inner step, want 0", met.ClipFrac)
			}
			if math.Abs(*met.KL) > 1e-6 {
				t.Errorf("KL %g at step 0, want 0 (B = 0)", *met.KL)
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

// TestKLOnlyWhenMeasured: with kl_coef 0 no reference log-probs are
// computed, so the KL is absent from the metrics row (it used to report
// k3 against a log-prob of 0: large and meaningless) and kl.png is not
// drawn; with kl_coef > 0 it is measured, and it grows once the adapters
// have moved.
func TestKLOnlyWhenMeasured(t *testing.T) {
	dir := toyModel(t)
	for _, coef := range []float64{0, 0.001} {
		cfg := toyTrainConfig()
		cfg.Steps, cfg.KLCoef = 2, coef
		run := t.TempDir()
		tr, err := New(Options{Model: dir, Run: run, Config: cfg, Data: toyData(4), Roller: newToyRoller(t, dir, 6), Reward: lowTokenReward})
		if err != nil {
			t.Fatal(err)
		}
		err = tr.Run(context.Background())
		tr.Close()
		if err != nil {
			t.Fatal(err)
		}
		rows, err := ReadMetrics(filepath.Join(run, MetricsFile))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(filepath.Join(run, MetricsFile))
		if err != nil {
			t.Fatal(err)
		}
		paths, err := PlotRun(run, "")
		if err != nil {
			t.Fatal(err)
		}
		drewKL := slices.Contains(paths, filepath.Join(run, PlotsDir, "kl.png"))
		if coef == 0 {
			for _, m := range rows {
				if m.KL != nil {
					t.Errorf("kl_coef 0, step %d: kl %g reported, but nothing was measured", m.Step, *m.KL)
				}
			}
			if strings.Contains(string(raw), `"kl"`) {
				t.Errorf("kl_coef 0: metrics.jsonl has a kl field:\n%s", raw)
			}
			if drewKL {
				t.Error("kl_coef 0: kl.png drawn")
			}
			continue
		}
		if len(rows) != 2 || rows[0].KL == nil || rows[1].KL == nil {
			t.Fatalf("kl_coef %g: the rows lack the KL: %+v", coef, rows)
		}
		// k3 = r − 1 − log r ≥ 0 per token, 0 at step 1 (B = 0), > 0 after
		// an update has moved the policy.
		if math.Abs(*rows[0].KL) > 1e-6 || !(*rows[1].KL > 0) {
			t.Errorf("kl_coef %g: kl %g then %g, want 0 then > 0", coef, *rows[0].KL, *rows[1].KL)
		}
		if !drewKL {
			t.Errorf("kl_coef %g: kl.png not drawn (%v)", coef, paths)
		}
	}
}
