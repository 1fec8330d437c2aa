package grpo

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/trajectory"
)

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	c, err := LoadConfig(write("ok.yaml", "group: 8\nlr: 3e-5\nvariant: single\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Group != 8 || c.LR != 3e-5 || c.Variant != VariantSingle || c.ClipLow != 0.2 || c.TopP != 0.95 {
		t.Fatalf("loaded %+v", c)
	}
	// M_Reas and M_Tool of LEAS: one shared adapter, loss on one role's tokens.
	for _, g := range []string{GradReason, GradTool, GradAll} {
		if c, err := LoadConfig(write("single.yaml", "variant: single\ngrad_tokens: "+g+"\n")); err != nil || c.GradTokens != g {
			t.Errorf("variant single with grad_tokens %s: %v", g, err)
		}
	}
	if c, err := LoadConfig(write("entropy.yaml", "entropy_coeff: 0.001\n")); err != nil || c.EntropyCoeff != 0.001 {
		t.Errorf("entropy_coeff 0.001: %v, %+v", err, c)
	}
	if c, err := LoadConfig(write("empty.yaml", "")); err != nil || c != DefaultConfig() {
		t.Fatalf("empty file: %v, %+v", err, c)
	}
	for body, want := range map[string]string{
		"gruop: 8\n":             "gruop",
		"variant: triple\n":      "variant",
		"clip_low: 1.5\n":        "clip_low",
		"grad_tokens: planner\n": "grad_tokens",
		"entropy_coeff: -0.1\n":  "entropy_coeff",
	} {
		if _, err := LoadConfig(write("bad.yaml", body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want one naming %s", body, err, want)
		}
	}
}

func TestLRWarmup(t *testing.T) {
	c := DefaultConfig()
	c.Steps, c.Prompts, c.Group, c.MiniBatch, c.LR, c.WarmupRatio = 10, 2, 5, 5, 1e-5, 0.25
	// 2 updates a step, 20 in all, 5 of warmup.
	for _, tc := range []struct {
		t    int
		want float64
	}{{1, 2e-6}, {4, 8e-6}, {5, 1e-5}, {20, 1e-5}} {
		if got := c.LRAt(tc.t); math.Abs(got-tc.want) > 1e-18 {
			t.Errorf("LRAt(%d) = %g, want %g", tc.t, got, tc.want)
		}
	}
}

func TestGroupAdvantages(t *testing.T) {
	// Group [1 0 0 1 1]: mean 0.6, unbiased var (2·0.36 + 3·0.16)/4 = 0.3.
	adv := GroupAdvantages([]float64{1, 0, 0, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5}, 5)
	sd := math.Sqrt(0.3) + 1e-6
	want := []float64{0.4 / sd, -0.6 / sd, -0.6 / sd, 0.4 / sd, 0.4 / sd, 0, 0, 0, 0, 0}
	for i := range want {
		if math.Abs(adv[i]-want[i]) > 1e-12 {
			t.Errorf("adv[%d] = %v, want %v", i, adv[i], want[i])
		}
	}
	for _, a := range GroupAdvantages([]float64{1, 0, 1}, 1) {
		if a != 0 {
			t.Fatalf("group of one: advantage %v, want 0", a)
		}
	}
}

func TestTokenWeights(t *testing.T) {
	// Rollout a: 3 loss positions (roles reason, tool, reason); b: 1 (tool).
	a := &trajectory.Trajectory{Tokens: make([]int64, 5), PromptLen: 2, Roles: []int64{0, 0, 1, 0, 0},
		Policy: []bool{false, true, true, true, false}, LogProbs: make([]float64, 5)}
	b := &trajectory.Trajectory{Tokens: make([]int64, 3), PromptLen: 1, Roles: []int64{1, 0, 0},
		Policy: []bool{true, false, false}, LogProbs: make([]float64, 3)}
	q := 1.0 / 4
	cases := []struct {
		mode, grad string
		want       [][]float64
	}{
		{AggTokenMean, GradAll, [][]float64{{0, q, q, q, 0}, {q, 0, 0}}},
		{AggSeqMeanTokenMean, GradAll, [][]float64{{0, 1.0 / 6, 1.0 / 6, 1.0 / 6, 0}, {0.5, 0, 0}}},
		{AggTokenMean, GradReason, [][]float64{{0, 0.5, 0, 0.5, 0}, {0, 0, 0}}},
		{AggTokenMean, GradTool, [][]float64{{0, 0, 0.5, 0, 0}, {0.5, 0, 0}}},
		{AggSeqMeanTokenMean, GradTool, [][]float64{{0, 0, 0.5, 0, 0}, {0.5, 0, 0}}},
	}
	for _, c := range cases {
		w, err := TokenWeights([]*trajectory.Trajectory{a, b}, c.mode, c.grad)
		if err != nil {
			t.Fatal(err)
		}
		for i := range c.want {
			for k := range c.want[i] {
				if math.Abs(w[i][k]-c.want[i][k]) > 1e-15 {
					t.Errorf("%s/%s: w = %v, want %v", c.mode, c.grad, w, c.want)
				}
			}
		}
	}
}
