package compiler_test

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/internal/npz"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/passes"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/safetensors"
)

// decodeOnly compiles exporter fixtures whose fused or opset-23 ops have no
// gradient rules: generation graphs only.
var decodeOnly = []string{"decode"}

const (
	scatterDir = "../testdata/onnx/ortgenai-static-scatter-bias-decoder"
	llamaDir   = "../testdata/onnx/ortgenai-tiny-random-llama-fp16"
)

func compileFixture(t *testing.T, src string, opts compiler.Options) (string, *manifest.Manifest) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	opts.Check = true
	man, err := compiler.Compile(src, out, opts)
	if err != nil {
		t.Fatal(err)
	}
	return out, man
}

func session(t testing.TB, path string) *runtime.Session {
	t.Helper()
	s, err := runtime.NewSession(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Destroy() })
	return s
}

func run(t testing.TB, s *runtime.Session, in map[string]*runtime.Tensor) map[string]*runtime.Tensor {
	t.Helper()
	runtime.AddGreedySamplerFeeds(s, in)
	out, err := s.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func golden(t *testing.T) map[string]*npz.Array {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(scatterDir, "golden_io.npz"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := npz.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func npzTensor(t *testing.T, a *npz.Array) *runtime.Tensor {
	t.Helper()
	var (
		tt  *runtime.Tensor
		err error
	)
	switch a.DType {
	case "i8":
		v, _ := a.Int64()
		tt, err = runtime.FromInt64(a.Shape, v)
	case "f4":
		v, _ := a.Float32()
		tt, err = runtime.FromFloat32(a.Shape, v)
	default:
		t.Fatalf("unexpected npz dtype %s", a.DType)
	}
	if err != nil {
		t.Fatal(err)
	}
	return tt
}

// adapterFeeds loads adapters.safetensors as graph inputs.
func adapterFeeds(t *testing.T, dir string) map[string]*runtime.Tensor {
	t.Helper()
	f, err := safetensors.Read(filepath.Join(dir, "adapters.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	feeds := map[string]*runtime.Tensor{}
	for _, st := range f.Tensors {
		v, err := st.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		feeds[st.Name], err = runtime.FromFloat32(st.Shape, v)
		if err != nil {
			t.Fatal(err)
		}
	}
	return feeds
}

func roleIDs(t *testing.T, shape []int64, fill func(i int) int64) *runtime.Tensor {
	t.Helper()
	n := int(shape[0] * shape[1])
	v := make([]int64, n)
	for i := range v {
		v[i] = fill(i)
	}
	tt, err := runtime.FromInt64(shape, v)
	if err != nil {
		t.Fatal(err)
	}
	return tt
}

func maxAbsDiff(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	m := 0.0
	for i := range a {
		if d := math.Abs(a[i] - b[i]); d > m || math.IsNaN(d) {
			m = d
		}
	}
	return m
}

// lastPosition returns logits[:, -1, :] of a [b, s, v] tensor.
func lastPosition(x *runtime.Tensor) []float64 {
	sh := x.Shape()
	b, s, v := int(sh[0]), int(sh[1]), int(sh[2])
	all := x.Floats()
	var out []float64
	for i := 0; i < b; i++ {
		out = append(out, all[(i*s+s-1)*v:(i*s+s)*v]...)
	}
	return out
}

// TestZeroAdaptersReproduceSource: with B = 0 the compiled decode graph
// gives the source model's last-position logits and the same caches, for
// the prefill and the decode step recorded in golden_io.npz, and both agree
// with the recorded outputs of the exporter's framework.
func TestZeroAdaptersReproduceSource(t *testing.T) {
	orttest.Init(t)
	out, man := compileFixture(t, filepath.Join(scatterDir, "model.onnx"), compiler.Options{Rank: 4, Alpha: 8, Seed: 1, Graphs: decodeOnly})
	if got := len(man.LoRA.Targets); got != 14 {
		t.Fatalf("matched %d targets, want 7 per layer × 2 layers", got)
	}
	src := session(t, filepath.Join(scatterDir, "model.onnx"))
	dec := session(t, filepath.Join(out, "decode.onnx"))
	gold := golden(t)
	adapters := adapterFeeds(t, out)
	for _, phase := range []string{"prefill", "decode"} {
		in := map[string]*runtime.Tensor{}
		for _, io := range src.Inputs() {
			in[io.Name] = npzTensor(t, gold[phase+"_in."+io.Name])
		}
		want := run(t, src, in)
		in[passes.RoleInput] = roleIDs(t, in["input_ids"].Shape(), func(i int) int64 { return int64(i % 2) })
		for k, v := range adapters {
			in[k] = v
		}
		got := run(t, dec, in)
		if sh := got["logits"].Shape(); sh[1] != 1 {
			t.Fatalf("decode logits shape %v, want one position", sh)
		}
		if d := maxAbsDiff(got["logits"].Floats(), lastPosition(want["logits"])); d > 1e-6 {
			t.Errorf("%s: decode.onnx vs source logits: max |diff| %.3g > 1e-6", phase, d)
		}
		for _, o := range src.Outputs() {
			if o.Name == "logits" {
				continue
			}
			if d := maxAbsDiff(got[o.Name].Floats(), want[o.Name].Floats()); d > 1e-6 {
				t.Errorf("%s %s: max |diff| %.3g", phase, o.Name, d)
			}
		}
		goldLogits, _ := gold[phase+"_out.logits"].Float64()
		g := gold[phase+"_out.logits"]
		ref := make([]float64, 0)
		s, v := int(g.Shape[1]), int(g.Shape[2])
		for b := 0; b < int(g.Shape[0]); b++ {
			ref = append(ref, goldLogits[(b*s+s-1)*v:(b*s+s)*v]...)
		}
		d := maxAbsDiff(got["logits"].Floats(), ref)
		t.Logf("%s: decode.onnx vs exporter golden logits: max |diff| %.3g", phase, d)
		if d > 1e-4 {
			t.Errorf("%s: decode.onnx vs golden: max |diff| %.3g > 1e-4", phase, d)
		}
	}
}

// probe re-emits a compiled decode graph with extra outputs.
func probe(t *testing.T, dir string, extra ...string) string {
	t.Helper()
	m, err := ir.Load(filepath.Join(dir, "decode.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range extra {
		m.Graph.Outputs = append(m.Graph.Outputs, &ir.ValueInfo{Name: name,
			Type: ir.TensorType(ir.Float32, ir.Sym("d0"), ir.Sym("d1"), ir.Sym("d2"))})
	}
	path := filepath.Join(dir, "probe.onnx")
	if err := ir.Save(m, path, ir.EmitOptions{}); err != nil {
		t.Fatal(err)
	}
	return path
}

func randomAdapters(t testing.TB, man *manifest.Manifest, rng *rand.Rand, roles ...string) map[string]*runtime.Tensor {
	t.Helper()
	feeds := map[string]*runtime.Tensor{}
	dec := man.Graphs[manifest.GraphDecode]
	for _, tg := range man.LoRA.Targets {
		for _, r := range roles {
			for _, name := range []string{tg.A[r], tg.B[r]} {
				spec := dec.Input(name)
				shape := []int64{spec.Dims[0].Value, spec.Dims[1].Value}
				v := make([]float32, shape[0]*shape[1])
				for i := range v {
					v[i] = float32(rng.NormFloat64() * 0.1)
				}
				tt, err := runtime.FromFloat32(shape, v)
				if err != nil {
					t.Fatal(err)
				}
				feeds[name] = tt
			}
		}
	}
	return feeds
}

// TestLinearMatchesFormula checks one rewritten linear against
// y = x·W + s·Σ_k [role == k]·(x·A_k·B_k), computed here from the source
// weights with plain loops, with random adapters and mixed roles.
func TestLinearMatchesFormula(t *testing.T) {
	orttest.Init(t)
	out, man := compileFixture(t, filepath.Join(scatterDir, "model.onnx"), compiler.Options{Rank: 3, Alpha: 6, Graphs: decodeOnly})
	var tg manifest.Target
	for _, x := range man.LoRA.Targets {
		if x.Module == "model.layers.1.self_attn.v_proj" {
			tg = x
		}
	}
	if tg.Form != passes.FormMatMulTranspose {
		t.Fatalf("v_proj matched as %q, want %q", tg.Form, passes.FormMatMulTranspose)
	}
	srcModel, err := ir.Load(filepath.Join(scatterDir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	var xName, yName, wName string
	for _, n := range srcModel.Graph.Nodes {
		if n.Name == tg.Node {
			xName, yName = n.Inputs[0], n.Outputs[0]
			for _, p := range srcModel.Graph.Nodes {
				if p.Outputs[0] == n.Inputs[1] {
					wName = p.Inputs[0]
				}
			}
		}
	}
	w, err := srcModel.Graph.Initializer(wName).Float64s() // [out, in]
	if err != nil {
		t.Fatal(err)
	}
	s := session(t, probe(t, out, xName, yName))
	gold := golden(t)
	in := map[string]*runtime.Tensor{}
	for _, io := range s.Inputs() {
		if a := gold["prefill_in."+io.Name]; a != nil {
			in[io.Name] = npzTensor(t, a)
		}
	}
	roles := []int64{0, 1, 1, 0}
	in[passes.RoleInput] = roleIDs(t, in["input_ids"].Shape(), func(i int) int64 { return roles[i%len(roles)] })
	rng := rand.New(rand.NewPCG(7, 7))
	for k, v := range randomAdapters(t, man, rng, man.LoRA.Roles...) {
		in[k] = v
	}
	got := run(t, s, in)
	x, y := got[xName].Floats(), got[yName].Floats()
	rows := int(got[xName].Shape()[0] * got[xName].Shape()[1])
	nIn, nOut, r := int(tg.In), int(tg.Out), man.LoRA.Rank
	worst := 0.0
	for row := 0; row < rows; row++ {
		xr := x[row*nIn : (row+1)*nIn]
		role := man.LoRA.Roles[roles[row%len(roles)]]
		a, b := in[tg.A[role]].Floats(), in[tg.B[role]].Floats()
		for o := 0; o < nOut; o++ {
			base := 0.0
			for i := 0; i < nIn; i++ {
				base += xr[i] * w[o*nIn+i]
			}
			lora := 0.0
			for j := 0; j < r; j++ {
				xa := 0.0
				for i := 0; i < nIn; i++ {
					xa += xr[i] * a[i*r+j]
				}
				lora += xa * b[j*nOut+o]
			}
			want := base + man.LoRA.Scale*lora
			if d := math.Abs(y[row*nOut+o] - want); d > worst {
				worst = d
			}
		}
	}
	t.Logf("max |y − formula| = %.3g over %d rows", worst, rows)
	if worst > 1e-5 {
		t.Fatalf("rewritten linear differs from the formula by %.3g", worst)
	}
}

// TestRoleIsolation: with every position in one role, the other role's
// adapters change no output at all.
func TestRoleIsolation(t *testing.T) {
	orttest.Init(t)
	out, man := compileFixture(t, filepath.Join(scatterDir, "model.onnx"), compiler.Options{Rank: 2, Alpha: 4, Graphs: decodeOnly})
	s := session(t, filepath.Join(out, "decode.onnx"))
	gold := golden(t)
	rng := rand.New(rand.NewPCG(3, 4))
	for active, role := range man.LoRA.Roles {
		other := man.LoRA.Roles[1-active]
		in := map[string]*runtime.Tensor{}
		for _, io := range s.Inputs() {
			if a := gold["prefill_in."+io.Name]; a != nil {
				in[io.Name] = npzTensor(t, a)
			}
		}
		in[passes.RoleInput] = roleIDs(t, in["input_ids"].Shape(), func(int) int64 { return int64(active) })
		for k, v := range randomAdapters(t, man, rng, role) {
			in[k] = v
		}
		var first map[string]*runtime.Tensor
		for trial := 0; trial < 2; trial++ {
			for k, v := range randomAdapters(t, man, rng, other) {
				in[k] = v
			}
			got := run(t, s, in)
			if first == nil {
				first = got
				continue
			}
			for name, v := range got {
				if !bytes.Equal(v.Bytes(), first[name].Bytes()) {
					t.Errorf("all positions %s: changing the %s adapters changed %s", role, other, name)
				}
			}
		}
	}
}

// TestGenAIFP16Compiles compiles onnxruntime-genai's fp16 export (contrib
// ops, external data) and runs its decode graph.
func TestGenAIFP16Compiles(t *testing.T) {
	orttest.Init(t)
	out, man := compileFixture(t, filepath.Join(llamaDir, "model.onnx"), compiler.Options{Rank: 4, Graphs: decodeOnly})
	if got := len(man.LoRA.Targets); got != 14 {
		t.Fatalf("matched %d targets, want 14", got)
	}
	if len(man.Model.Cache) != 2 || man.Model.KVHeads != 1 || man.Model.HeadDim != 16 {
		t.Fatalf("cache facts %+v", man.Model)
	}
	if st, err := os.Stat(filepath.Join(out, "decode.onnx")); err != nil || st.Size() > 1<<20 {
		t.Fatalf("decode.onnx should reference the weights, not copy them: %v %v", st.Size(), err)
	}
	src := session(t, filepath.Join(llamaDir, "model.onnx"))
	dec := session(t, filepath.Join(out, "decode.onnx"))
	ids := []int64{5, 17, 300, 9, 1, 2, 3, 4}
	in := map[string]*runtime.Tensor{}
	in["input_ids"], _ = runtime.FromInt64([]int64{2, 4}, ids)
	in["attention_mask"], _ = runtime.FromInt64([]int64{2, 4}, []int64{1, 1, 1, 1, 1, 1, 1, 1})
	in["position_ids"], _ = runtime.FromInt64([]int64{2, 4}, []int64{0, 1, 2, 3, 0, 1, 2, 3})
	for _, c := range man.Model.Cache {
		in[c.PastKey], _ = runtime.FromFloat16Bits([]int64{2, 1, 0, 16}, nil)
		in[c.PastValue], _ = runtime.FromFloat16Bits([]int64{2, 1, 0, 16}, nil)
	}
	want := run(t, src, in)
	in[passes.RoleInput] = roleIDs(t, []int64{2, 4}, func(i int) int64 { return int64(i / 3 % 2) })
	for k, v := range adapterFeeds(t, out) {
		in[k] = v
	}
	got := run(t, dec, in)
	if d := maxAbsDiff(got["logits"].Floats(), lastPosition(want["logits"])); d != 0 {
		t.Fatalf("fp16 decode.onnx with zero B differs from the source by %.3g", d)
	}
}

func TestBadInputLeavesNoOutput(t *testing.T) {
	compiled, _ := compileFixture(t, filepath.Join(scatterDir, "model.onnx"), compiler.Options{Rank: 2, Graphs: decodeOnly})
	cases := []struct {
		name string
		src  string
		opts compiler.Options
		pre  func(out string)
		want error
		says string
	}{
		{"no target", "../testdata/onnx/optimum-tiny-distilbert/model.onnx", compiler.Options{}, nil, passes.ErrNoTarget, "matched"},
		{"unknown target", filepath.Join(scatterDir, "model.onnx"), compiler.Options{Targets: []string{"qq"}}, nil, nil, "unknown target"},
		{"already compiled", filepath.Join(compiled, "decode.onnx"), compiler.Options{}, nil, passes.ErrAlreadyCompiled, "original export"},
		{"not onnx", filepath.Join(scatterDir, "genai_config.json"), compiler.Options{}, nil, ir.ErrNotONNX, "not an ONNX model"},
		{"output exists", filepath.Join(scatterDir, "model.onnx"), compiler.Options{}, func(out string) { os.MkdirAll(out, 0o755) }, compiler.ErrOutputExists, "--force"},
		{"bad rank", filepath.Join(scatterDir, "model.onnx"), compiler.Options{Rank: -1}, nil, nil, "rank"},
		{"no gradient rule", filepath.Join(scatterDir, "model.onnx"), compiler.Options{}, nil, passes.ErrNoGradientRule, `no gradient rule for TensorScatter: TensorScatter node "model/layers.1/self_attn/TensorScatter_node_63"`},
		{"unknown graph", filepath.Join(scatterDir, "model.onnx"), compiler.Options{Graphs: []string{"decode", "eval"}}, nil, nil, "unknown graph"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			parent := t.TempDir()
			out := filepath.Join(parent, "out")
			if c.pre != nil {
				c.pre(out)
			}
			_, err := compiler.Compile(c.src, out, c.opts)
			if err == nil {
				t.Fatal("compile succeeded")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.says) {
				t.Fatalf("error %q does not say %q", err, c.says)
			}
			entries, _ := os.ReadDir(parent)
			for _, e := range entries {
				if c.pre == nil || e.Name() != "out" {
					t.Fatalf("left %s behind", e.Name())
				}
			}
		})
	}
}

func TestForceReplaces(t *testing.T) {
	out, _ := compileFixture(t, filepath.Join(scatterDir, "model.onnx"), compiler.Options{Rank: 2, Graphs: decodeOnly})
	if _, err := compiler.Compile(filepath.Join(scatterDir, "model.onnx"), out, compiler.Options{Rank: 3, Force: true, Graphs: decodeOnly}); err != nil {
		t.Fatal(err)
	}
	m, err := manifest.Read(out)
	if err != nil || m.LoRA.Rank != 3 {
		t.Fatalf("after --force: %v rank %v", err, m)
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 1 {
		t.Fatalf("left %d entries beside the output", len(entries))
	}
}

// TestWeightsLinkedOrCopied: the external weights reach the output folder
// as a hard link by default and as a copy with CopyWeights; both load in
// ONNX Runtime, which refuses data outside the model's folder.
func TestWeightsLinkedOrCopied(t *testing.T) {
	orttest.Init(t)
	for _, copyWeights := range []bool{false, true} {
		out, _ := compileFixture(t, filepath.Join(llamaDir, "model.onnx"), compiler.Options{Rank: 2, Graphs: decodeOnly, CopyWeights: copyWeights})
		var src, dst syscall.Stat_t
		if err := syscall.Stat(filepath.Join(llamaDir, "model.onnx.data"), &src); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Stat(filepath.Join(out, "model.onnx.data"), &dst); err != nil {
			t.Fatal(err)
		}
		if linked := src.Ino == dst.Ino; linked == copyWeights {
			t.Fatalf("CopyWeights %v, but the data file is linked: %v", copyWeights, linked)
		}
		if copyWeights && dst.Nlink != 1 {
			t.Fatalf("the copied data file has %d links", dst.Nlink)
		}
		session(t, filepath.Join(out, "decode.onnx"))
	}
}
