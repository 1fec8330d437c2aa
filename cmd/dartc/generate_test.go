package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/models/prompt"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/urfave/cli/v2"
)

// TestGenerateStreamsAndSummarizes runs `dartc generate` greedily on a
// compiled synthesized Qwen2 with the real vocabulary: the random model
// writes no tags, so each turn is an invalid action, and the streamed text
// must show Search-R1's invalid-action message between the turns.
func TestGenerateStreamsAndSummarizes(t *testing.T) {
	orttest.Init(t)
	dir := t.TempDir()
	cfg, _ := qwen2.Preset("tiny")
	cfg.Vocab = 151936
	res, err := synth.Synthesize(cfg, filepath.Join(dir, "src"), synth.Options{KVCache: true, Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := compiler.Compile(res.ModelPath, filepath.Join(dir, "out"), compiler.Options{Graphs: []string{"decode"}}); err != nil {
		t.Fatal(err)
	}
	app := newApp()
	var out, errw bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errw
	app.ExitErrHandler = func(*cli.Context, error) {}
	args := []string{"dartc", "generate", "--model", filepath.Join(dir, "out"), "--prompt", "what is a plum", "--greedy", "--max-turns", "1", "--max-turn-tokens", "6"}
	if err := app.Run(args); err != nil {
		t.Fatal(err)
	}
	if strings.Count(out.String(), prompt.InvalidAction) != 1 {
		t.Errorf("stdout %q: want one invalid-action message between two turns", out.String())
	}
	for _, want := range []string{"tokens:   ", "12 generated", "stop:     max_tokens after 2 turns", "tokens/s"} {
		if !strings.Contains(errw.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, errw.String())
		}
	}
	app.Writer, app.ErrWriter = &out, &errw
	if err := app.Run([]string{"dartc", "generate", "--model", filepath.Join(dir, "out"), "--prompt", "x", "--temperature", "0"}); err == nil || !strings.Contains(err.Error(), "--greedy") {
		t.Errorf("temperature 0: %v", err)
	}
	// The agent reads 0 as its default (500 tokens a turn, 3 passages): the
	// command refuses it, and a negative count, before generating.
	for _, c := range []struct{ flag, value, says string }{
		{"--max-turn-tokens", "0", "--max-turn-tokens 0: must be ≥ 1"},
		{"--max-turn-tokens", "-5", "--max-turn-tokens -5: must be ≥ 1"},
		{"--docs", "0", "--docs 0: must be ≥ 1"},
		{"--docs", "-1", "--docs -1: must be ≥ 1"},
		{"--max-turns", "-2", "--max-turns -2: must be ≥ 0"},
	} {
		out.Reset()
		err := app.Run([]string{"dartc", "generate", "--model", filepath.Join(dir, "out"), "--prompt", "x", "--greedy", "--max-turns", "1", "--max-turn-tokens", "6", c.flag, c.value})
		if err == nil || !strings.Contains(err.Error(), c.says) || out.Len() > 0 {
			t.Errorf("%s %s: err = %v, %d bytes generated; want an error saying %q and nothing generated", c.flag, c.value, err, out.Len(), c.says)
		}
	}
}
