package mini

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/passes"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/runtime/agent"
)

// compileMini compiles the committed model (its tokenizer comes along).
func compileMini(t testing.TB, graphs []string) (string, *manifest.Manifest) {
	t.Helper()
	if _, err := runtime.Init(); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "compiled")
	man, err := compiler.Compile(filepath.Join(modelDir, "model.onnx"), out, compiler.Options{
		Rank: 8, Alpha: 16, Graphs: graphs, Tokenizer: modelDir})
	if err != nil {
		t.Fatal(err)
	}
	return out, man
}

func i64(t *testing.T, shape []int64, v []int64) *runtime.Tensor {
	t.Helper()
	x, err := runtime.FromInt64(shape, v)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// The compiled decode.onnx with zero adapters gives PyTorch's logits:
// reference-logits.json holds the eager-attention forward of
// Qwen2ForCausalLM over a test question's prompt and a first turn, at its
// last positions. The graph runs a prefill up to the first of them, then
// one cached step per position, so the KV cache path is checked too.
func TestDecodeMatchesPyTorch(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(modelDir, "reference-logits.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ref struct {
		IDs       []int64     `json:"ids"`
		Positions []int       `json:"positions"`
		Logits    [][]float64 `json:"logits"`
	}
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	dir, man := compileMini(t, []string{manifest.GraphDecode})
	sess, err := runtime.NewSession(filepath.Join(dir, man.Graphs[manifest.GraphDecode].File), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Destroy()
	// Zero adapters: the compiled graph must be the base model.
	var static []runtime.IOInfo
	for _, name := range man.AdapterNames() {
		in, ok := sess.Input(name)
		if !ok {
			t.Fatalf("decode.onnx has no input %s", name)
		}
		static = append(static, in)
	}
	feeds, err := agent.ZeroAdapters(static)
	if err != nil {
		t.Fatal(err)
	}
	if len(feeds) != len(man.AdapterNames()) {
		t.Fatalf("%d adapter inputs, manifest names %d", len(feeds), len(man.AdapterNames()))
	}
	past := map[string]*runtime.Tensor{}
	for _, c := range man.Model.Cache {
		past[c.PastKey] = runtime.NewTensor(runtime.Float32, 1, man.Model.KVHeads, 0, man.Model.HeadDim)
		past[c.PastValue] = runtime.NewTensor(runtime.Float32, 1, man.Model.KVHeads, 0, man.Model.HeadDim)
	}
	done := 0
	worst := 0.0
	for k, p := range ref.Positions {
		chunk := ref.IDs[done : p+1]
		n := int64(len(chunk))
		pos := make([]int64, n)
		for i := range pos {
			pos[i] = int64(done + i)
		}
		mask := make([]int64, p+1)
		for i := range mask {
			mask[i] = 1
		}
		in := map[string]*runtime.Tensor{
			"input_ids": i64(t, []int64{1, n}, chunk), "position_ids": i64(t, []int64{1, n}, pos),
			"attention_mask": i64(t, []int64{1, int64(p + 1)}, mask), passes.RoleInput: i64(t, []int64{1, n}, make([]int64, n)),
		}
		for name, v := range feeds {
			in[name] = v
		}
		for name, v := range past {
			in[name] = v
		}
		runtime.AddGreedySamplerFeeds(sess, in)
		out, err := sess.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range man.Model.Cache {
			past[c.PastKey], past[c.PastValue] = out[c.PresentKey], out[c.PresentValue]
		}
		done = p + 1
		got := out["logits"].Float32()
		want := ref.Logits[k]
		if len(got) != len(want) {
			t.Fatalf("position %d: %d logits, want %d", p, len(got), len(want))
		}
		d, m := 0.0, 0.0
		for i := range want {
			d = math.Max(d, math.Abs(float64(got[i])-want[i]))
			m = math.Max(m, math.Abs(want[i]))
		}
		worst = math.Max(worst, d/m)
		if d/m > 1e-4 {
			t.Errorf("position %d: max |ORT − PyTorch| / max |PyTorch| = %.2g, want ≤ 1e-4", p, d/m)
		}
	}
	t.Logf("%d positions, worst relative difference %.2g", len(ref.Positions), worst)
}
