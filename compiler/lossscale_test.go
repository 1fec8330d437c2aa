package compiler_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/passes"
)

// TestFloat16LossScale: token-mean weights over thousands of tokens put the
// float16 backward's seeds below float16's smallest step, and without loss
// scaling most adapter gradients came out 0 (the float16 graph, run with
// float16 rounding emulated, against the float32 compile: off by 1–2 times
// the largest gradient at weights ×1/256 … ×1/65536). With loss_scale S
// multiplying the seeds (and dividing the gradients), they match the
// float32 graph within float16's rounding, as at weights ×1 unscaled; the
// loss itself is the unscaled one.
func TestFloat16LossScale(t *testing.T) {
	orttest.Init(t)
	ref, man := compileTiny(t, synth.Options{Seed: 3}, compiler.Options{})
	low, lowMan := compileTiny(t, synth.Options{Seed: 3}, compiler.Options{Precision: "fp16"})
	if lowMan.Graphs[manifest.GraphTrain].Input(passes.LossScaleInput) == nil || man.Graphs[manifest.GraphTrain].Input(passes.LossScaleInput) != nil {
		t.Fatal("loss_scale should be an input of the float16 train graph only")
	}
	trR := graphSession(t, ref, man, manifest.GraphTrain)
	trL := session(t, emulate(t, low+"/train.onnx"))
	rng := rand.New(rand.NewPCG(5, 6))
	bt := newBatch(rng, man.Model.Vocab, 9, func(i int) int64 { return int64(i/3) % 2 })
	adapters := adaptersOf(t, man, rng, 0.05)
	worstAt := func(c, scale float64) (worst, lossDiff float64) {
		in := bt.feeds(t)
		for k, v := range adapters {
			in[k] = v
		}
		bt.lossFeeds(t, rand.New(rand.NewPCG(1, 1)), in)
		for i := range in["token_weights"].Float32() {
			in["token_weights"].Float32()[i] *= float32(c)
		}
		want := run(t, trR, in)
		in[passes.LossScaleInput] = f32(t, nil, []float32{float32(scale)})
		got := run(t, trL, in)
		for name, w := range want {
			if strings.HasPrefix(name, passes.GradPrefix) {
				worst = math.Max(worst, relDiff(got[name].Floats(), w.Floats()))
			}
		}
		l, lw := got["loss"].Floats()[0], want["loss"].Floats()[0]
		return worst, math.Abs(l-lw) / math.Max(math.Abs(lw), 1e-30)
	}
	base, _ := worstAt(1, 1)
	t.Logf("weights ×1, no scaling: worst gradient error %.3g of the largest", base)
	for _, c := range []float64{1.0 / 256, 1.0 / 4096, 1.0 / 65536} {
		unscaled, _ := worstAt(c, 1)
		scaled, loss := worstAt(c, 1/c)
		t.Logf("weights ×%g: unscaled %.3g, loss_scale %g: %.3g (loss relative error %.2g)", c, unscaled, 1/c, scaled, loss)
		if scaled > 2*base+0.01 || math.IsNaN(scaled) {
			t.Errorf("weights ×%g with loss_scale %g: gradients off by %.3g of the largest (×1 unscaled: %.3g)", c, 1/c, scaled, base)
		}
		if loss > 1e-2 {
			t.Errorf("weights ×%g: the loss moved with the scale (relative error %.2g)", c, loss)
		}
	}
}
