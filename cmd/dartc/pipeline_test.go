package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestTrainEndToEnd runs one full GRPO step from the command line: a tiny
// model with the real Qwen2 vocabulary and tokenizer, compiled by dartc, the
// real BM25 index over the bundled corpus, Search-R1 rollouts, EM rewards,
// reference log-probs, train.onnx and adamw.onnx on real ONNX Runtime; then
// plots and an evaluation of the checkpoint.
func TestTrainEndToEnd(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	steps := [][]string{
		{"models", "synth", "--preset", "tiny", "--layers", "1", "--vocab", "151936", "--kv-cache", "-o", p("model")},
		{"compile", p("model/model.onnx"), "--out", p("compiled"), "--rank", "4"},
		{"search", "index", "--corpus", "../../data/demo/corpus.jsonl", "--format", "title-text", "-o", p("index.bm25")},
		{"train", "--model", p("compiled"), "--data", "../../data/demo/hotpotqa_val.jsonl", "--search", p("index.bm25"),
			"-o", p("run"), "--steps", "1", "--prompts", "1", "--group", "2", "--max-turns", "1", "--max-turn-tokens", "8", "--no-progress"},
		{"plot", p("run")},
		{"eval", "--model", p("compiled"), "--adapters", p("run/checkpoints/step-000001/adapters.safetensors"),
			"--data", "../../data/demo/nq_test.jsonl", "--limit", "2", "--search", p("index.bm25"),
			"--max-turns", "1", "--max-turn-tokens", "8", "-o", p("eval"), "--quiet"},
	}
	for _, args := range steps {
		if out, err := runDartc(t, "", args...); err != nil {
			t.Fatalf("dartc %v: %v\n%s", args, err, out)
		}
	}
	f, err := os.Open(p("run/metrics.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var row map[string]float64
	sc := bufio.NewScanner(f)
	rows := 0
	for sc.Scan() {
		rows++
		row = map[string]float64{}
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatal(err)
		}
	}
	if rows != 1 || row["step"] != 1 {
		t.Fatalf("metrics.jsonl has %d rows, last %v", rows, row)
	}
	// The first inner step runs the sampling policy itself: ratio 1, no clipping.
	if dev := row["ratio_max_dev_first"]; dev > 1e-4 || row["clip_frac"] != 0 {
		t.Fatalf("first step: max |ratio − 1| = %g, clip fraction %g", dev, row["clip_frac"])
	}
	for _, f := range []string{"run/checkpoints/step-000001/adapters.safetensors", "run/plots/reward.png", "eval/table.md", "eval/predictions.jsonl"} {
		if _, err := os.Stat(p(f)); err != nil {
			t.Fatal(err)
		}
	}
}
