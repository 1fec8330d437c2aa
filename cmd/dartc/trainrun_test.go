package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/grpo"
	"github.com/urfave/cli/v2"
)

// runDartcStderr runs dartc like runDartc and returns stdout and stderr.
func runDartcStderr(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	app := newApp()
	var out, errw bytes.Buffer
	app.Writer, app.ErrWriter = &out, &errw
	app.ExitErrHandler = func(*cli.Context, error) {}
	err := app.Run(interspersed(app, append([]string{"dartc"}, args...)))
	return out.String(), errw.String(), err
}

// demoTrainSetup makes, in a temporary folder, what `dartc train` needs on
// the demo's scale: a one-layer tiny Qwen2 with the 151,936-token
// vocabulary (model/, compiled/ at rank 4) and a BM25 index of the demo
// corpus (index.bm25); p names a file in that folder.
func demoTrainSetup(t *testing.T) (p func(name string) string) {
	t.Helper()
	dir := t.TempDir()
	p = func(name string) string { return filepath.Join(dir, name) }
	for _, args := range [][]string{
		{"models", "synth", "--preset", "tiny", "--layers", "1", "--vocab", "151936", "--kv-cache", "-o", p("model")},
		{"compile", p("model/model.onnx"), "--out", p("compiled"), "--rank", "4"},
		{"search", "index", "--corpus", "../../data/demo/corpus.jsonl", "--format", "title-text", "-o", p("index.bm25")},
	} {
		if out, err := runDartc(t, "", args...); err != nil {
			t.Fatalf("dartc %v: %v\n%s", args, err, out)
		}
	}
	return p
}

// TestTrainDefaultsFitTheDemoModel: on the demo model (tiny Qwen2 with the
// 151,936-token vocabulary), `dartc train` with its defaults prints the
// step estimate (memory and time) before starting and a line per step with
// reward, EM, loss, KL, clip fraction and phase times; the defaults'
// estimate fits a small CPU machine while Search-R1's preset is refused
// on a machine of this estimate's size. The estimate's accuracy is
// measured by `go test -run '^$' -bench EstimateMemory ./grpo`.
func TestTrainDefaultsFitTheDemoModel(t *testing.T) {
	p := demoTrainSetup(t)
	man, err := manifest.Read(p("compiled"))
	if err != nil {
		t.Fatal(err)
	}
	const gib = 1 << 30
	def := grpo.EstimateStep(man, p("compiled"), grpo.DefaultConfig(), 250)
	sr1 := grpo.EstimateStep(man, p("compiled"), grpo.SearchR1Config(), 250)
	t.Logf("defaults: %s", def)
	t.Logf("search-r1: %s", sr1)
	if def.PeakBytes > 6*gib {
		t.Errorf("the defaults need %.1f GiB a step on the demo model: too much for a small CPU machine", def.PeakBytes/gib)
	}
	// The chunked loss heads keep the vocabulary tensors at [chunk, vocab]:
	// the longer rollouts cost activations and KV cache.
	if sr1.PeakBytes < 2*def.PeakBytes {
		t.Errorf("Search-R1's preset estimated at %.1f GiB, the defaults at %.1f", sr1.PeakBytes/gib, def.PeakBytes/gib)
	}
	small := sr1.PeakBytes / 2 // a machine with half the memory Search-R1's preset needs here
	if err := checkMemory(sr1, small, "cpu", false); err == nil || !strings.Contains(err.Error(), "--micro-batch") || !strings.Contains(err.Error(), "--yes") {
		t.Errorf("search-r1 on a %.1f GiB machine: %v", small/gib, err)
	}
	if err := checkMemory(sr1, small, "cpu", true); err != nil {
		t.Errorf("--yes did not start anyway: %v", err)
	}
	if err := checkMemory(def, 16*gib, "cpu", false); err != nil {
		t.Errorf("the defaults on a 16 GiB machine: %v", err)
	}

	// The CLI with its defaults, but one step of 2 short rollouts to keep the test short.
	out, errOut, err := runDartcStderr(t, "train", "--model", p("compiled"), "--data", "../../data/demo/hotpotqa_val.jsonl",
		"--search", p("index.bm25"), "-o", p("run"), "--steps", "1", "--prompts", "1", "--group", "2", "--max-turn-tokens", "8", "--no-progress")
	if err != nil {
		t.Fatalf("train with the defaults: %v\n%s\n%s", err, out, errOut)
	}
	for _, want := range []string{"estimate for one step:", "peak memory ≈", "a decode step of", "step 1/1  reward ", "  em ", "  loss ", "  kl ", "  clip ", "rollout ", "reference ", "train ", "optimizer "} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	// --resume keeps the run's settings; changing one needs --override.
	resume := []string{"train", "--resume", "--model", p("compiled"), "--data", "../../data/demo/hotpotqa_val.jsonl",
		"--search", p("index.bm25"), "-o", p("run"), "--no-progress"}
	if _, errOut, err := runDartcStderr(t, append(resume, "--steps", "2")...); err == nil || !strings.Contains(err.Error(), "steps: 1 → 2") || !strings.Contains(err.Error(), "--override steps") {
		t.Errorf("resume with --steps 2: %v\n%s", err, errOut)
	}
	if _, _, err := runDartcStderr(t, append(resume, "--preset", "search-r1")...); err == nil || !strings.Contains(err.Error(), "--preset with --resume") {
		t.Errorf("resume with --preset: %v", err)
	}
	if out, errOut, err := runDartcStderr(t, append(resume, "--steps", "2", "--override", "steps")...); err != nil || !strings.Contains(out, "trained 2 steps") || !strings.Contains(errOut, "step 2/2") {
		t.Errorf("resume with --steps 2 --override steps: %v\n%s\n%s", err, out, errOut)
	}
	if cfg, err := grpo.LoadConfig(p("run/config.yaml")); err != nil || cfg.Steps != 2 || cfg.Prompts != 1 {
		t.Errorf("config.yaml after the override: %+v, %v", cfg, err)
	}

	// A refused start writes nothing. (Where the estimate fits this machine
	// nothing is started: Search-R1's preset is 1005 steps of 2560 rollouts.)
	if limit := grpo.MemoryLimit(); sr1.PeakBytes > limit {
		_, _, err = runDartcStderr(t, "train", "--preset", "search-r1", "--model", p("compiled"), "--data", "../../data/demo/hotpotqa_val.jsonl",
			"--search", p("index.bm25"), "-o", p("run-sr1"), "--no-progress")
		if err == nil || !strings.Contains(err.Error(), "--yes") {
			t.Errorf("search-r1 preset on a %.0f GiB machine: %v", limit/gib, err)
		}
		if _, serr := os.Stat(p("run-sr1")); !os.IsNotExist(serr) {
			t.Errorf("a refused run left %s: %v", p("run-sr1"), serr)
		}
	}
}

// TestTrainProgressMovesDuringRollout: the bar advances with the tokens of
// a step's rollouts, before the step ends, and never past the step.
func TestTrainProgressMovesDuringRollout(t *testing.T) {
	cfg := grpo.DefaultConfig()
	cfg.Steps = 3
	var buf bytes.Buffer
	p := newTrainProgress(&buf, cfg, true)
	p.start(1)
	at := func() int64 { return p.bar.State().CurrentNum }
	if at() != progressUnits {
		t.Fatalf("resumed at step 1: bar at %d, want %d", at(), progressUnits)
	}
	var prev int64 = at()
	for round := range 3 {
		for range int(p.maxTokens / 8) {
			p.token()
		}
		time.Sleep(110 * time.Millisecond)
		p.token()
		if now := at(); now <= prev {
			t.Fatalf("round %d: the bar stayed at %d during the rollout", round, now)
		} else {
			prev = now
		}
	}
	if prev >= 2*progressUnits {
		t.Fatalf("the rollout moved the bar to %d, past the step's end", prev)
	}
	p.phase("train")
	if at() != progressUnits+progressRollout {
		t.Errorf("train phase: bar at %d", at())
	}
	p.stepDone(2)
	if at() != 2*progressUnits {
		t.Errorf("step 2 done: bar at %d", at())
	}
	if !strings.Contains(buf.String(), "rollout,") || !strings.Contains(buf.String(), "tokens") {
		t.Errorf("the bar never showed the rollout's tokens: %q", buf.String())
	}
}
