package runtime_test

import (
	"path/filepath"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/runtime"
)

// compileDecode synthesizes the tiny Qwen2 preset with a KV cache (its
// vocabulary replaced by vocab when vocab > 0; so sets the seed and
// weights) and compiles its decode.onnx into a temporary directory, which
// it returns.
func compileDecode(t testing.TB, vocab int, so synth.Options) string {
	t.Helper()
	orttest.Init(t)
	dir := t.TempDir()
	cfg, _ := qwen2.Preset("tiny")
	if vocab > 0 {
		cfg.Vocab = vocab
	}
	so.KVCache = true
	res, err := synth.Synthesize(cfg, filepath.Join(dir, "src"), so)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if _, err := compiler.Compile(res.ModelPath, out, compiler.Options{Graphs: []string{manifest.GraphDecode}}); err != nil {
		t.Fatal(err)
	}
	return out
}

// zeroInputs returns zeros for every input of d that generation does not
// compute: the adapters of the base model.
func zeroInputs(d *runtime.Decoder) map[string]*runtime.Tensor {
	in := map[string]*runtime.Tensor{}
	for _, io := range d.StaticInputs() {
		in[io.Name] = runtime.NewTensor(io.DType, io.Dims...)
	}
	return in
}
