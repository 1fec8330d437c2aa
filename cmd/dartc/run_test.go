package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/urfave/cli/v2"
)

// TestRunSamples: `dartc run` samples in decode.onnx with --temperature,
// --top-p, --top-k and --seed (a seed fixes the tokens), prints Go's share
// of the time, and refuses a bad setting with a non-zero exit.
func TestRunSamples(t *testing.T) {
	orttest.Init(t)
	dir := t.TempDir()
	cfg, _ := qwen2.Preset("tiny")
	res, err := synth.Synthesize(cfg, filepath.Join(dir, "src"), synth.Options{KVCache: true, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := compiler.Compile(res.ModelPath, filepath.Join(dir, "out"), compiler.Options{Graphs: []string{"decode"}}); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, error) {
		app := newApp()
		var out bytes.Buffer
		app.Writer, app.ErrWriter = &out, &out
		app.ExitErrHandler = func(*cli.Context, error) {}
		err := app.Run(append(append([]string{"dartc", "run", "--steps", "12"}, args...), filepath.Join(dir, "out")))
		return out.String(), err
	}
	line := func(out, prefix string) string {
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		return ""
	}
	sampled := []string{"--temperature", "0.9", "--top-p", "0.8", "--top-k", "40", "--seed", "3"}
	a, err := run(sampled...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sampling:  temperature 0.9, top-p 0.8, top-k 40 (sampled in the graph", "go share:  ", "% of the time outside ONNX Runtime", "tokens/s"} {
		if !strings.Contains(a, want) {
			t.Errorf("output lacks %q:\n%s", want, a)
		}
	}
	b, err := run(sampled...)
	if err != nil {
		t.Fatal(err)
	}
	if line(a, "generated:") != line(b, "generated:") {
		t.Errorf("same seed, different tokens:\n%s\n%s", line(a, "generated:"), line(b, "generated:"))
	}
	g, err := run()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(g, "sampling:  greedy (argmax in the graph)") || line(g, "generated:") == line(a, "generated:") {
		t.Errorf("greedy run:\n%s", g)
	}
	if _, err := run("--top-p", "1.5", "--temperature", "1"); err == nil || !strings.Contains(err.Error(), "top-p") {
		t.Errorf("--top-p 1.5: %v", err)
	}
	for _, steps := range []string{"0", "-3"} {
		if _, err := run("--steps", steps); err == nil || !strings.Contains(err.Error(), "--steps "+steps+": must be ≥ 1") {
			t.Errorf("--steps %s: %v", steps, err)
		}
	}
}
