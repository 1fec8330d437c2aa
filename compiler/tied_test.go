package compiler_test

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/passes"
)

// TestTiedEmbeddingHeldOnce: the TorchScript export of the tied tiny
// Qwen2.5 stores the embedding twice (model.embed_tokens.weight [vocab,
// hidden] and the lm_head's transposed copy); its config.json says
// tie_word_embeddings. logprobs.onnx and train.onnx of every export form
// must hold one vocab-sized matrix and run without ORT's pre-packing (which
// would copy it again), and the TorchScript form's must still give
// PyTorch's log-probs, loss and adapter gradients with its fixed dual
// adapters and mixed roles (the committed references) under that session
// config. The other parity tests (export_parity_test.go) check every form.
func TestTiedEmbeddingHeldOnce(t *testing.T) {
	orttest.Init(t)
	ref := loadReference(t)
	const b, s, vocab, hidden = 2, 7, 2003, 64
	check := func(out string, man *manifest.Manifest, want int, prepack string) {
		t.Helper()
		for _, g := range []string{"logprobs", "train"} {
			m, err := ir.Load(filepath.Join(out, g+".onnx"))
			if err != nil {
				t.Fatal(err)
			}
			var big []string
			for _, init := range m.Graph.Initializers {
				if n := numel(init.Dims); n == vocab*hidden {
					big = append(big, init.Name)
				}
			}
			if len(big) != want {
				t.Errorf("%s.onnx holds %d vocab-sized matrices %v, want %d", g, len(big), big, want)
			}
			if got := man.Graphs[g].SessionConfig[compiler.DisablePrepackingKey]; got != prepack {
				t.Errorf("%s: session config %s = %q, want %q", g, compiler.DisablePrepackingKey, got, prepack)
			}
		}
	}
	// Without config.json nothing says the two are one matrix: left alone.
	alone := filepath.Join(t.TempDir(), "model.onnx")
	copyFile(t, filepath.Join(exportDir, "torchscript", "model.onnx"), alone)
	aloneOut, aloneMan := compileFixture(t, alone, compiler.Options{Rank: 4, Alpha: 8})
	check(aloneOut, aloneMan, 2, "")

	// Every export form: one matrix, no pre-packing. The dynamo forms
	// share it already; the TorchScript forms are the rewrite's.
	for _, ex := range exporters {
		out, man := compileExport(t, ex.name)
		check(out, man, 1, "1")
	}

	out, man := compileExport(t, "torchscript")

	lp := run(t, graphSession(t, out, man, "logprobs"), ref.batchFeeds(t, ref.adapterFeeds(t, man)))["logprobs"].Floats()
	want := ref.floats(t, "lora.logprobs") // [b, s-1]
	mask, _ := ref.get(t, "attention_mask").Int64s()
	worst := 0.0
	for r := 0; r < b; r++ {
		for p := 0; p < s-1; p++ {
			if mask[r*s+p] == 1 {
				worst = math.Max(worst, math.Abs(lp[r*s+p]-want[r*(s-1)+p])/math.Abs(want[r*(s-1)+p]))
			}
		}
	}
	t.Logf("log-probs vs PyTorch: max relative diff %.2g", worst)
	if worst > 1e-5 {
		t.Fatalf("log-probs differ from PyTorch by %.3g relative", worst)
	}

	pad := func(name string) []float32 {
		v := ref.floats(t, name) // [b, s-1]
		x := make([]float32, b*s)
		for r := 0; r < b; r++ {
			for p := 0; p < s-1; p++ {
				x[r*s+p] = float32(v[r*(s-1)+p])
			}
		}
		return x
	}
	in := ref.batchFeeds(t, ref.adapterFeeds(t, man))
	for name, ref := range map[string]string{"token_weights": "grpo.weights", "advantages": "grpo.advantages",
		"old_logprobs": "grpo.old_logprobs", "ref_logprobs": "grpo.ref_logprobs"} {
		in[name] = f32(t, []int64{b, s}, pad(ref))
	}
	in["clip_low"], in["clip_high"], in["kl_coef"] = f32(t, nil, []float32{0.2}), f32(t, nil, []float32{0.2}), f32(t, nil, []float32{0.1})
	in["entropy_coeff"] = f32(t, nil, []float32{0})
	got := run(t, graphSession(t, out, man, "train"), in)
	if want := ref.floats(t, "grpo.loss")[0]; math.Abs(got["loss"].Floats()[0]-want)/math.Abs(want) > 1e-5 {
		t.Fatalf("loss %.8g, PyTorch %.8g", got["loss"].Floats()[0], want)
	}
	for _, name := range man.AdapterNames() {
		if d := relDiff(got[passes.GradPrefix+name].Floats(), ref.floats(t, "grad."+name)); d > 1e-4 {
			t.Fatalf("gradient of %s differs from autograd by %.3g relative", name, d)
		}
	}
}

func numel(dims []int64) int64 {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	return n
}
