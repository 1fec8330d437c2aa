package grpo

import (
	"bytes"
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/safetensors"
)

// TestSingleGradTokens trains LEAS's M_Reas and M_Tool: one shared adapter
// (variant single) with the loss on one role's tokens. The first step's
// loss is −Σ Aᵢ nᵢʳ / Nʳ over that role's positions only (ratio 1, KL 0),
// computed here from the rewards and the roles; the adapter trains (B is no
// longer zero) and both slots hold it; the checkpoint records variant and
// grad_tokens.
func TestSingleGradTokens(t *testing.T) {
	dir := toyModel(t)
	man, err := manifest.Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, grad := range []string{GradReason, GradTool} {
		t.Run(grad, func(t *testing.T) {
			cfg := toyTrainConfig()
			cfg.Variant, cfg.GradTokens, cfg.Steps = VariantSingle, grad, 1
			role := int64(RoleReason)
			if grad == GradTool {
				role = RoleTool
			}
			roller := newToyRoller(t, dir, 10)
			run := t.TempDir()
			tr, err := New(Options{Model: dir, Run: run, Config: cfg, Data: toyData(5), Roller: roller, Reward: lowTokenReward})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			met, err := tr.Step(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			want, total := 0.0, 0.0
			var rs []float64
			for _, tj := range roller.last {
				rs = append(rs, lowTokenReward(tj))
			}
			adv := make([]float64, len(rs))
			for g := 0; g < len(rs); g += cfg.Group {
				mean, v := 0.0, 0.0
				for _, r := range rs[g : g+cfg.Group] {
					mean += r / float64(cfg.Group)
				}
				for _, r := range rs[g : g+cfg.Group] {
					v += (r - mean) * (r - mean) / float64(cfg.Group-1)
				}
				for k := g; k < g+cfg.Group; k++ {
					adv[k] = (rs[k] - mean) / (math.Sqrt(v) + 1e-6)
				}
			}
			kept, other := 0, 0
			for i, tj := range roller.last {
				for p := range tj.Tokens {
					if !tj.Policy[p] {
						continue
					}
					if tj.Roles[p] == role {
						want -= adv[i]
						total++
						kept++
					} else {
						other++
					}
				}
			}
			if kept == 0 || other == 0 {
				t.Fatalf("%d positions of role %d and %d of the other: the test needs both", kept, role, other)
			}
			want /= total
			if math.Abs(met.Loss-want) > 1e-5 {
				t.Errorf("loss %.8f, want −Σ A over %s positions / N = %.8f", met.Loss, grad, want)
			}
			if _, err := tr.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			f, err := safetensors.Read(filepath.Join(run, CheckpointsDir, CheckpointName(1), AdaptersFile))
			if err != nil {
				t.Fatal(err)
			}
			if f.Metadata[MetaVariant] != VariantSingle || f.Metadata[MetaGradTokens] != grad {
				t.Errorf("checkpoint metadata %v, want variant single, grad_tokens %s", f.Metadata, grad)
			}
			trained := false
			for _, tg := range man.LoRA.Targets {
				for _, pair := range [][2]string{{tg.A["reason"], tg.A["tool"]}, {tg.B["reason"], tg.B["tool"]}} {
					a, err := f.Get(pair[0])
					if err != nil {
						t.Fatal(err)
					}
					b, err := f.Get(pair[1])
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(a.Data, b.Data) {
						t.Errorf("%s and %s differ: a single adapter must fill both slots", pair[0], pair[1])
					}
				}
				b, _ := f.Get(tg.B["reason"])
				v, _ := b.Float64s()
				for _, x := range v {
					trained = trained || x != 0
				}
			}
			if !trained {
				t.Error("every B is still zero after an update")
			}
		})
	}
}
