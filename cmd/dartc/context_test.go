package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestContextLengthRefused: compile records the synthesized model's
// max_position_embeddings (2048, from its config.json) and generate, eval
// and train refuse a question whose prompt does not fit, with a message
// naming it, before any rollout: without the bound the decoder was fed the
// whole prompt (an 800 KB question made ONNX Runtime ask for 2.56 TB).
func TestContextLengthRefused(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	long := strings.Repeat("plum ", 2500) // about 2,500 tokens
	rows := []map[string]any{
		{"id": "short", "question": "what is a plum", "golden_answers": []string{"fruit"}},
		{"id": "long", "question": long, "golden_answers": []string{"fruit"}},
	}
	var data strings.Builder
	for _, r := range rows {
		b, _ := json.Marshal(r)
		data.Write(append(b, '\n'))
	}
	os.WriteFile(p("data.jsonl"), []byte(data.String()), 0o644)
	for _, args := range [][]string{
		{"models", "synth", "--preset", "tiny", "--layers", "1", "--vocab", "151936", "--kv-cache", "-o", p("model")},
		{"compile", p("model/model.onnx"), "--out", p("compiled"), "--rank", "2"},
		{"search", "index", "--corpus", "../../retrieval/testdata/small.jsonl", "-o", p("index.bm25")},
	} {
		if out, err := runDartc(t, "", args...); err != nil {
			t.Fatalf("dartc %v: %v\n%s", args, err, out)
		}
	}
	var man struct {
		Model struct {
			MaxLength     int64  `json:"max_length"`
			MaxLengthFrom string `json:"max_length_from"`
		} `json:"model"`
	}
	b, _ := os.ReadFile(p("compiled/manifest.json"))
	if err := json.Unmarshal(b, &man); err != nil || man.Model.MaxLength != 2048 || !strings.Contains(man.Model.MaxLengthFrom, "config.json") {
		t.Fatalf("manifest max_length %d from %q (%v), want 2048 from config.json", man.Model.MaxLength, man.Model.MaxLengthFrom, err)
	}
	for _, c := range []struct {
		name string
		args []string
		says []string
	}{
		{"generate", []string{"generate", "--model", p("compiled"), "--prompt", long, "--greedy", "--max-turns", "1", "--max-turn-tokens", "4"},
			[]string{"context is 2048 tokens"}},
		{"eval", []string{"eval", "--model", p("compiled"), "--data", p("data.jsonl"), "--max-turns", "1", "--max-turn-tokens", "4", "-o", p("eval"), "--quiet"},
			[]string{`question 2 (id "long"`, "context is 2048 tokens", "shorten or drop it"}},
		{"train", []string{"train", "--model", p("compiled"), "--data", p("data.jsonl"), "--search", p("index.bm25"), "-o", p("run"),
			"--steps", "1", "--prompts", "2", "--group", "2", "--max-turns", "1", "--max-turn-tokens", "4", "--no-progress"},
			[]string{`question 2 (id "long"`, "context is 2048 tokens"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := runDartc(t, "", c.args...)
			if err == nil {
				t.Fatalf("a %d-byte question was accepted:\n%s", len(long), out)
			}
			for _, want := range c.says {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
		})
	}
	if _, err := os.Stat(p("eval/predictions.jsonl")); err == nil {
		t.Error("eval rolled out before refusing the long question")
	}
}
