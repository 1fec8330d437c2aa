package compiler_test

import (
	"math"
	"path/filepath"
	"strings"
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
// tie_word_embeddings. By default the graphs keep what the export stores
// and ORT pre-packs as usual. With --share-embedding, logprobs.onnx and
// train.onnx of every export form must hold one vocab-sized matrix and run
// without ORT's pre-packing (which would copy it again), the option must be
// refused for a model whose config does not say the two are tied, and the
// TorchScript form's must still give
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
			if got := vocabMatrices(t, filepath.Join(out, g+".onnx"), vocab*hidden); got != want {
				t.Errorf("%s: %s.onnx holds %d vocab-sized matrices, want %d", out, g, got, want)
			}
			if got := man.Graphs[g].SessionConfig[compiler.DisablePrepackingKey]; got != prepack {
				t.Errorf("%s: session config %s = %q, want %q", g, compiler.DisablePrepackingKey, got, prepack)
			}
		}
	}
	// Without config.json nothing says the two are one matrix: refused.
	alone := filepath.Join(t.TempDir(), "model.onnx")
	copyFile(t, filepath.Join(exportDir, "torchscript", "model.onnx"), alone)
	_, err := compiler.Compile(alone, filepath.Join(t.TempDir(), "out"), compiler.Options{Rank: 4, Alpha: 8, ShareEmbedding: true})
	if err == nil || !strings.Contains(err.Error(), "tie_word_embeddings") {
		t.Fatalf("--share-embedding without a config saying the embedding is tied: err %v, want a refusal naming tie_word_embeddings", err)
	}

	// Every export form. By default as exported (the TorchScript forms
	// store the matrix twice, the dynamo forms once), pre-packing on. With
	// the option: one matrix, no pre-packing.
	shared := compiler.Options{Rank: 4, Alpha: 8, ShareEmbedding: true}
	for _, ex := range exporters {
		out, man := compileExport(t, ex.name)
		check(out, man, vocabMatrices(t, filepath.Join(exportDir, ex.name, "model.onnx"), vocab*hidden), "")
		out, man = compileFixture(t, filepath.Join(exportDir, ex.name, "model.onnx"), shared)
		check(out, man, 1, "1")
	}

	out, man := compileFixture(t, filepath.Join(exportDir, "torchscript", "model.onnx"), shared)

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

// vocabMatrices counts the initializers of size elements in an ONNX file.
func vocabMatrices(t *testing.T, path string, size int64) int {
	t.Helper()
	m, err := ir.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, init := range m.Graph.Initializers {
		if init.NumElements() == size {
			n++
		}
	}
	return n
}
