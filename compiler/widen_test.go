package compiler_test

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/gradcheck"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/runtime"
)

// TestPrecisionFloat64: --precision fp64 widens a float32 export (weights in
// external data) into float64 graphs. Checked against two independent
// references: the same model synthesized in float64 directly and compiled
// as it is (log-probs equal to float32 weight rounding), and central
// differences of the widened train.onnx's own loss (dartc gradcheck's
// precise check, tolerance 1e-6, which float32 graphs cannot meet).
func TestPrecisionFloat64(t *testing.T) {
	orttest.Init(t)
	wide, man := compileTiny(t, synth.Options{Seed: 3, Storage: synth.StorageExternal}, compiler.Options{Precision: "fp64"})
	native, nman := compileTiny(t, synth.Options{Seed: 3, DType: synth.Float64}, compiler.Options{})
	if _, err := os.Stat(filepath.Join(wide, "weights.float64.data")); err != nil {
		t.Fatalf("the widened weights: %v", err)
	}
	for _, name := range man.AdapterNames() {
		if in := man.Graphs[manifest.GraphTrain].Input(name); in == nil || in.DType != "float64" {
			t.Fatalf("adapter %s is %+v in the widened train graph, want float64", name, in)
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	bt := newBatch(rng, man.Model.Vocab, 9, func(i int) int64 { return int64(i/3) % 2 })
	adapters := map[string]*runtime.Tensor{} // float32 draws, fed as float64
	for k, v := range randomAdapters(t, nman, rng, nman.LoRA.Roles...) {
		w, err := runtime.FromFloat64(v.Shape(), v.Floats())
		if err != nil {
			t.Fatal(err)
		}
		adapters[k] = w
	}
	lp := func(dir string, m *manifest.Manifest) []float64 {
		in := bt.feeds(t)
		for k, v := range adapters {
			in[k] = v
		}
		return run(t, graphSession(t, dir, m, manifest.GraphLogprobs), in)["logprobs"].Floats()
	}
	a, b := lp(wide, man), lp(native, nman)
	worst := 0.0
	for i := range a {
		worst = math.Max(worst, math.Abs(a[i]-b[i]))
	}
	t.Logf("log-probs, widened vs native float64: max |diff| %.3g", worst)
	if worst > 1e-5 || math.IsNaN(worst) {
		t.Errorf("the widened model's log-probs differ from the float64 model's by %.3g", worst)
	}
	res, err := gradcheck.Run(wide, gradcheck.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("gradcheck of the widened train.onnx (%s): worst relative error %.3g", res.DType, res.Max)
	if res.DType != "float64" || !(res.Max <= gradcheck.DefaultTolerance("float64")) {
		t.Errorf("gradcheck of the widened graphs: %s, worst %.3g", res.DType, res.Max)
	}
}
