package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/eval/leasrun"
)

// TestLEASFromTrainedVariants makes LEAS's three trained models the way
// the paper does, with `dartc train`: M_Reas and M_Tool are one shared
// adapter (--variant single) trained with the loss on reasoning-only and
// tool-only tokens, M_Unified one shared adapter on all tokens. Their
// checkpoints go to `dartc leas`, which must run; a dual-variant checkpoint
// in M_Reas's place, a compiled (untrained) adapter file and M_Tool's
// checkpoint given as M_Reas are refused with the command that makes the
// right one.
func TestLEASFromTrainedVariants(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	data := "../../data/demo/hotpotqa_val.jsonl"
	setup := [][]string{
		{"models", "synth", "--preset", "tiny", "--layers", "1", "--vocab", "151936", "--kv-cache", "-o", p("model")},
		{"compile", p("model/model.onnx"), "--out", p("compiled"), "--rank", "4"},
		{"search", "index", "--corpus", "../../data/demo/corpus.jsonl", "--format", "title-text", "-o", p("index.bm25")},
	}
	for _, args := range setup {
		if out, err := runDartc(t, "", args...); err != nil {
			t.Fatalf("dartc %v: %v\n%s", args, err, out)
		}
	}
	train := func(name string, extra ...string) string {
		args := append([]string{"train", "--model", p("compiled"), "--data", data, "--search", p("index.bm25"),
			"-o", p(name), "--steps", "1", "--prompts", "1", "--group", "2", "--max-turns", "1", "--max-turn-tokens", "8",
			"--lr", "1e-2", "--warmup-ratio", "0", "--no-progress"}, extra...)
		if out, err := runDartc(t, "", args...); err != nil {
			t.Fatalf("dartc %v: %v\n%s", args, err, out)
		}
		return p(name + "/checkpoints/step-000001/adapters.safetensors")
	}
	reas := train("reas", "--variant", "single", "--grad-tokens", "reason")
	tool := train("tool", "--variant", "single", "--grad-tokens", "tool")
	unified := train("unified", "--variant", "single", "--grad-tokens", "all")
	dualReas := train("dual-reas", "--variant", "dual", "--grad-tokens", "reason")

	leas := func(out, r, tl, u string) (string, error) {
		return runDartc(t, "", "leas", "--model", p("compiled"), "--reason-adapters", r, "--tool-adapters", tl,
			"--unified-adapters", u, "--data", "../../data/demo/nq_test.jsonl", "--search", p("index.bm25"),
			"-k", "2", "--limit", "2", "--top-p", "1", "--max-turns", "1", "--max-turn-tokens", "4", "-o", p(out), "--quiet")
	}
	out, err := leas("leas", reas, tool, unified)
	if err != nil || !strings.Contains(out, "2 questions × 6 configurations × k = 2") {
		t.Fatalf("leas on the trained variants: %v\n%s", err, out)
	}
	for _, name := range []string{leasrun.ResultsFile, leasrun.SummaryFile, leasrun.QuestionsFile} {
		if _, err := os.Stat(p("leas/" + name)); err != nil {
			t.Error(err)
		}
	}
	for _, tc := range []struct {
		name, r, tl, u string
		want           []string
	}{
		{"dual as M_Reas", dualReas, tool, unified, []string{"M_Reas", "--variant dual --grad-tokens reason", "dartc train --variant single --grad-tokens reason"}},
		{"compiled as M_Unified", reas, tool, p("compiled/adapters.safetensors"), []string{"M_Unified", "no training metadata", "dartc train --variant single --grad-tokens all"}},
		{"M_Tool as M_Reas", tool, tool, unified, []string{"M_Reas", "--grad-tokens tool", "dartc train --variant single --grad-tokens reason"}},
	} {
		_, err := leas("refused-"+strings.ReplaceAll(tc.name, " ", "-"), tc.r, tc.tl, tc.u)
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not say %q", tc.name, err, w)
			}
		}
	}
}
