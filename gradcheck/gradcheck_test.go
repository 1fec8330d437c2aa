package gradcheck_test

import (
	"path/filepath"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/gradcheck"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
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
