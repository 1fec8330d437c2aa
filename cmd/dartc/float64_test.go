package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestFloat64Everywhere: a float64 model, raw and compiled, opens and runs
// in run, generate, train and eval. ONNX Runtime's float32-only fusions
// (QuickGelu) must be off in every session that opens a float64 graph,
// including the runtime's own reading of a graph's inputs and outputs.
func TestFloat64Everywhere(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	steps := []struct {
		args []string
		want string
	}{
		{[]string{"models", "synth", "--preset", "tiny", "--layers", "1", "--vocab", "151936", "--dtype", "float64", "--kv-cache", "-o", p("model")}, "float64"},
		{[]string{"compile", p("model/model.onnx"), "--out", p("compiled"), "--rank", "4"}, ""},
		{[]string{"run", "--steps", "2", p("model/model.onnx")}, "generated:"},
		{[]string{"run", "--steps", "2", p("compiled")}, "generated:"},
		{[]string{"search", "index", "--corpus", "../../data/demo/corpus.jsonl", "--format", "title-text", "-o", p("index.bm25")}, ""},
		{[]string{"generate", "--model", p("compiled"), "--prompt", "what is a plum", "--greedy", "--max-turns", "1", "--max-turn-tokens", "4"}, "My previous action is invalid"},
		{[]string{"train", "--model", p("compiled"), "--data", "../../data/demo/hotpotqa_val.jsonl", "--search", p("index.bm25"),
			"-o", p("run"), "--steps", "1", "--prompts", "1", "--group", "2", "--max-turns", "1", "--max-turn-tokens", "8", "--no-progress"}, "trained 1 steps"},
		{[]string{"eval", "--model", p("compiled"), "--adapters", p("run/checkpoints/step-000001/adapters.safetensors"),
			"--data", "../../data/demo/nq_test.jsonl", "--limit", "2", "--search", p("index.bm25"),
			"--max-turns", "1", "--max-turn-tokens", "8", "-o", p("eval"), "--quiet"}, "EM"},
	}
	for _, s := range steps {
		out, err := runDartc(t, "", s.args...)
		if err != nil {
			t.Fatalf("dartc %s: %v\n%s", strings.Join(s.args, " "), err, out)
		}
		if !strings.Contains(out, s.want) {
			t.Errorf("dartc %s: output lacks %q:\n%s", strings.Join(s.args, " "), s.want, out)
		}
	}
}
