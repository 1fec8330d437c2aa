package gradcheck_test

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/gradcheck"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/runtime"
)

// TestTrainGradientsMatchCentralDifferences compiles the float64 tiny
// Qwen2-shaped model in each exporter form and checks every adapter's
// train.onnx gradient against central differences of the loss.
func TestTrainGradientsMatchCentralDifferences(t *testing.T) {
	orttest.Init(t)
	cfg, err := qwen2.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	untied := cfg
	untied.TiedEmbed = false
	for _, c := range []struct {
		form synth.LinearForm
		cfg  qwen2.Config
		name string
	}{
		{synth.TorchScript, cfg, ""}, {synth.Dynamo, cfg, ""}, {synth.Gemm, cfg, ""},
		{synth.Dynamo, untied, "-untied"},
	} {
		form := c.form
		t.Run(form.String()+c.name, func(t *testing.T) {
			dir := t.TempDir()
			res, err := synth.Synthesize(c.cfg, filepath.Join(dir, "src"), synth.Options{DType: synth.Float64, LinearForm: form, Seed: 3})
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "out")
			if _, err := compiler.Compile(res.ModelPath, out, compiler.Options{Rank: 4, Alpha: 8, Check: true}); err != nil {
				t.Fatal(err)
			}
			r, err := gradcheck.Run(out, gradcheck.Options{Seed: 5, Samples: 2})
			if err != nil {
				t.Fatal(err)
			}
			worst := r.Sorted()[0]
			t.Logf("%d adapter tensors, loss %.6g, worst relative error %.2g (%s)", len(r.Tensor), r.Loss, r.Max, worst)
			if r.Max > 1e-6 {
				t.Fatalf("worst relative error %.3g > 1e-6 at %s", r.Max, worst)
			}
		})
	}
}

// tinyCompiled compiles the float32 tiny Qwen2-shaped model with a KV
// cache (all graphs) into a temporary directory.
func tinyCompiled(t *testing.T) string {
	t.Helper()
	orttest.Init(t)
	cfg, err := qwen2.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Layers = 1
	dir := t.TempDir()
	res, err := synth.Synthesize(cfg, filepath.Join(dir, "src"), synth.Options{KVCache: true, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if _, err := compiler.Compile(res.ModelPath, out, compiler.Options{Rank: 2, Alpha: 4}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestBadOptionsRefused: a negative count (or a one-token sequence, or a
// step that is not a finite h > 0) is refused by name, not replaced by the
// default while the caller reports the value it asked for.
func TestBadOptionsRefused(t *testing.T) {
	out := tinyCompiled(t)
	for _, c := range []struct {
		opts gradcheck.Options
		says string
	}{
		{gradcheck.Options{Samples: -2}, "-2 samples"},
		{gradcheck.Options{Batch: -1}, "batch -1"},
		{gradcheck.Options{SeqLen: 1}, "sequence length 1"},
		{gradcheck.Options{SeqLen: -4}, "sequence length -4"},
		{gradcheck.Options{Step: math.NaN()}, "step NaN"},
		{gradcheck.Options{Step: -1e-3}, "step -0.001"},
	} {
		if _, err := gradcheck.Run(out, c.opts); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("Run(%+v): err = %v, want one saying %q", c.opts, err, c.says)
		}
	}
	for _, c := range []struct {
		opts gradcheck.ParityOptions
		says string
	}{
		{gradcheck.ParityOptions{Batch: -1}, "batch -1"},
		{gradcheck.ParityOptions{SeqLen: 1}, "sequence length 1"},
		{gradcheck.ParityOptions{SeqLen: -4}, "sequence length -4"},
		{gradcheck.ParityOptions{DecodeSteps: -1}, "-1 decode steps"},
		{gradcheck.ParityOptions{Threads: -2}, "-2 threads"},
	} {
		c.opts.Device = runtime.DeviceCPU
		if _, err := gradcheck.Parity(out, c.opts); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("Parity(%+v): err = %v, want one saying %q", c.opts, err, c.says)
		}
	}
}

// TestResultsReportTheSettingsUsed: zero options take their defaults, and
// the results say which, for the commands to print.
func TestResultsReportTheSettingsUsed(t *testing.T) {
	out := tinyCompiled(t)
	r, err := gradcheck.Run(out, gradcheck.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.Samples != 3 || r.Batch != 2 || r.SeqLen != 8 || r.Step != 1e-2 {
		t.Errorf("gradcheck ran with %d samples, batch %d × %d, step %g; want the defaults 3, 2 × 8, 1e-2 (float32)", r.Samples, r.Batch, r.SeqLen, r.Step)
	}
	p, err := gradcheck.Parity(out, gradcheck.ParityOptions{Device: runtime.DeviceCPU, Seed: 1, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if p.Batch != 2 || p.SeqLen != 16 || p.DecodeSteps != 16 || p.DecodeTotal != 32 {
		t.Errorf("parity ran batch %d × %d, %d decode steps (%d tokens); want the defaults 2 × 16, 16 (32 tokens)", p.Batch, p.SeqLen, p.DecodeSteps, p.DecodeTotal)
	}
	p, err = gradcheck.Parity(out, gradcheck.ParityOptions{Device: runtime.DeviceCPU, Batch: 1, SeqLen: 4, NoDecode: true, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if p.Batch != 1 || p.SeqLen != 4 || p.DecodeSteps != 0 || p.Logprobs.N != 4 {
		t.Errorf("parity ran batch %d × %d, %d decode steps, %d log-probs; want 1 × 4, none, 4", p.Batch, p.SeqLen, p.DecodeSteps, p.Logprobs.N)
	}
}
