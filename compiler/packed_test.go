package compiler_test

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/passes"
	"github.com/dartc/dartc/runtime"
)

// packedQKVModel builds the smallest graph with onnxruntime-genai's packed
// projection: embeddings → /model/layers.0/attn/qkv_proj/MatMul → lm_head.
func packedQKVModel(t *testing.T, rng *rand.Rand, dir string) (path string, emb, wqkv, head []float64) {
	const v, h, o = 16, 8, 24
	draw := func(n int) []float64 {
		x := make([]float64, n)
		for i := range x {
			x[i] = rng.NormFloat64() * 0.5
		}
		return x
	}
	emb, wqkv, head = draw(v*h), draw(h*o), draw(o*v)
	to32 := func(x []float64) []float32 {
		f := make([]float32, len(x))
		for i, a := range x {
			f[i] = float32(a)
			x[i] = float64(f[i])
		}
		return f
	}
	seq := []ir.Dim{ir.Sym("batch"), ir.Sym("seq")}
	m := &ir.Model{IRVersion: 8, Opsets: []ir.Opset{{Version: 17}}, Graph: &ir.Graph{
		Name:    "packed",
		Inputs:  []*ir.ValueInfo{{Name: "input_ids", Type: ir.TensorType(ir.Int64, seq...)}},
		Outputs: []*ir.ValueInfo{{Name: "logits", Type: ir.TensorType(ir.Float32, seq[0], seq[1], ir.Dim{Value: v})}},
		Initializers: []*ir.Tensor{
			ir.NewTensorF32("model.embed_tokens.weight", []int64{v, h}, to32(emb)),
			ir.NewTensorF32("model.layers.0.attn.qkv_proj.MatMul.weight", []int64{h, o}, to32(wqkv)),
			ir.NewTensorF32("lm_head.MatMul.weight", []int64{o, v}, to32(head)),
		},
		Nodes: []*ir.Node{
			{Name: "/model/embed_tokens/Gather", OpType: "Gather", Inputs: []string{"model.embed_tokens.weight", "input_ids"}, Outputs: []string{"x"}},
			{Name: "/model/layers.0/attn/qkv_proj/MatMul", OpType: "MatMul", Inputs: []string{"x", "model.layers.0.attn.qkv_proj.MatMul.weight"}, Outputs: []string{"qkv"}},
			{Name: "/lm_head/MatMul", OpType: "MatMul", Inputs: []string{"qkv", "lm_head.MatMul.weight"}, Outputs: []string{"logits"}},
		},
	}}
	path = filepath.Join(dir, "model.onnx")
	if err := ir.Save(m, path, ir.EmitOptions{}); err != nil {
		t.Fatal(err)
	}
	return path, emb, wqkv, head
}

func TestPackedQKV(t *testing.T) {
	orttest.Init(t)
	rng := rand.New(rand.NewPCG(8, 9))
	src, emb, wqkv, head := packedQKVModel(t, rng, t.TempDir())
	out := filepath.Join(t.TempDir(), "out")
	man, err := compiler.Compile(src, out, compiler.Options{Targets: []string{"q", "k", "v"}, Rank: 2, Alpha: 3, Graphs: decodeOnly, Check: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(man.LoRA.Targets) != 1 || man.LoRA.Targets[0].Kind != "qkv" || man.LoRA.Targets[0].Out != 24 {
		t.Fatalf("targets %+v", man.LoRA.Targets)
	}
	if _, err := compiler.Compile(src, filepath.Join(t.TempDir(), "o2"), compiler.Options{Graphs: decodeOnly}); err == nil {
		t.Fatal("default targets include o/gate/up/down, which this graph lacks: want an error")
	}
	ids := []int64{3, 7, 1, 15, 2, 2}
	roles := []int64{0, 1, 1, 1, 0, 1}
	in := map[string]*runtime.Tensor{"input_ids": i64(t, []int64{2, 3}, ids), passes.RoleInput: i64(t, []int64{2, 3}, roles)}
	for k, v := range randomAdapters(t, man, rng, man.LoRA.Roles...) {
		in[k] = v
	}
	got := run(t, session(t, filepath.Join(out, "decode.onnx")), in)["logits"].Floats()
	tg := man.LoRA.Targets[0]
	const h, o, v = 8, 24, 16
	worst := 0.0
	for row := 0; row < 2; row++ {
		p := row*3 + 2 // last position
		x := emb[ids[p]*h : (ids[p]+1)*h]
		role := man.LoRA.Roles[roles[p]]
		a, b := in[tg.A[role]].Floats(), in[tg.B[role]].Floats()
		y := make([]float64, o)
		for j := 0; j < o; j++ {
			for i := 0; i < h; i++ {
				y[j] += x[i] * wqkv[i*o+j]
			}
			for r := 0; r < 2; r++ {
				xa := 0.0
				for i := 0; i < h; i++ {
					xa += x[i] * a[i*2+r]
				}
				y[j] += man.LoRA.Scale * xa * b[r*o+j]
			}
		}
		for k := 0; k < v; k++ {
			want := 0.0
			for j := 0; j < o; j++ {
				want += y[j] * head[j*v+k]
			}
			worst = math.Max(worst, math.Abs(got[row*v+k]-want))
		}
	}
	if worst > 1e-4 {
		t.Fatalf("packed qkv logits differ from the formula by %.3g", worst)
	}
}
