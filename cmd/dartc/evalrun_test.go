package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/eval/gradanglerun"
	"github.com/dartc/dartc/eval/leasrun"
	"github.com/dartc/dartc/eval/run"
	"github.com/dartc/dartc/eval/run/runtest"
)

// TestEvalLEASGradangleCommands runs `dartc eval` (twice: the second run
// resumes and rolls out nothing), `dartc eval score` on its predictions,
// `dartc leas` and `dartc gradangle` on the compiled tiny Qwen2 with the
// bundled corpus, and checks what each writes.
func TestEvalLEASGradangleCommands(t *testing.T) {
	f := runtest.Get(t)
	t.Cleanup(runtest.Cleanup)
	data := filepath.Join(f.Data, "nq_test.jsonl") + "," + filepath.Join(f.Data, "bamboogle.jsonl")
	report := filepath.Join(t.TempDir(), "report")
	args := []string{"eval", "--model", f.Model, "--adapters", f.Adapters["unified"], "--data", data, "--search", f.Index,
		"-o", report, "--limit", "2", "--batch", "2", "--max-turns", "1", "--max-turn-tokens", "6", "--quiet"}
	out, err := runDartc(t, "", args...)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"4 questions (0 resumed, 4 rolled out", "| metric | NQ | Bamboogle | Avg |", "| EM |"} {
		if !strings.Contains(out, want) {
			t.Errorf("eval output lacks %q:\n%s", want, out)
		}
	}
	for _, name := range []string{run.PredictionsFile, run.TablePrefix + ".md", run.TablePrefix + ".csv", run.TablePrefix + ".json"} {
		if _, err := os.Stat(filepath.Join(report, name)); err != nil {
			t.Error(err)
		}
	}
	out, err = runDartc(t, "", args...)
	if err != nil || !strings.Contains(out, "4 questions (4 resumed, 0 rolled out)") {
		t.Errorf("second eval run did not resume: %v\n%s", err, out)
	}
	if out, err = runDartc(t, "", "eval", "score", filepath.Join(report, run.PredictionsFile)); err != nil || !strings.Contains(out, "4 questions") {
		t.Errorf("eval score on the predictions: %v\n%s", err, out)
	}
	if _, err := runDartc(t, "", "eval", "--data", data, "-o", report); err == nil || !strings.Contains(err.Error(), "--model is required") {
		t.Errorf("eval without --model: %v", err)
	}

	leasDir := filepath.Join(t.TempDir(), "leas")
	out, err = runDartc(t, "", "leas", "--model", f.Model, "--reason-adapters", f.Adapters["reason"], "--tool-adapters", f.Adapters["tool"],
		"--unified-adapters", f.Adapters["unified"], "--data", filepath.Join(f.Data, "nq_test.jsonl"), "--search", f.Index,
		"-k", "2", "--limit", "2", "--top-p", "1", "--max-turns", "1", "--max-turn-tokens", "4", "-o", leasDir, "--quiet")
	if err != nil || !strings.Contains(out, "2 questions × 6 configurations × k = 2") {
		t.Fatalf("leas: %v\n%s", err, out)
	}
	for _, name := range []string{leasrun.ResultsFile, leasrun.SummaryFile, leasrun.HistogramFile} {
		if _, err := os.Stat(filepath.Join(leasDir, name)); err != nil {
			t.Error(err)
		}
	}

	gaDir := filepath.Join(t.TempDir(), "gradangle")
	out, err = runDartc(t, "", "gradangle", "--model", f.Model, "--adapters", f.Adapters["unified"],
		"--data", filepath.Join(f.Data, "nq_test.jsonl"), "--limit", "2", "--top-p", "1", "--max-turns", "1", "--max-turn-tokens", "4",
		"-o", gaDir, "--quiet")
	if err != nil || !strings.Contains(out, "2 rollouts") || !strings.Contains(out, "reason–reason") {
		t.Fatalf("gradangle: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(gaDir, gradanglerun.SummaryFile)); err != nil {
		t.Error(err)
	}
}
