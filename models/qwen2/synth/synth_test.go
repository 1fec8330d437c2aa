package synth_test

import (
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"

	"github.com/dartc/dartc/internal/outpath"
	"github.com/dartc/dartc/ir/onnxpb"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
	"google.golang.org/protobuf/proto"
)

type graph struct {
	model *onnxpb.ModelProto
	nodes map[string]*onnxpb.NodeProto
	inits map[string]*onnxpb.TensorProto
	ops   map[string]int
}

func load(t *testing.T, res *synth.Result) graph {
	t.Helper()
	raw, err := os.ReadFile(res.ModelPath)
	if err != nil {
		t.Fatal(err)
	}
	m := &onnxpb.ModelProto{}
	if err := proto.Unmarshal(raw, m); err != nil {
		t.Fatal(err)
	}
	g := graph{model: m, nodes: map[string]*onnxpb.NodeProto{}, inits: map[string]*onnxpb.TensorProto{}, ops: map[string]int{}}
	for _, n := range m.GetGraph().GetNode() {
		if _, dup := g.nodes[n.GetName()]; dup {
			t.Fatalf("node name %s used twice", n.GetName())
		}
		g.nodes[n.GetName()] = n
		g.ops[n.GetOpType()]++
	}
	for _, i := range m.GetGraph().GetInitializer() {
		g.inits[i.GetName()] = i
	}
	return g
}

func (g graph) node(t *testing.T, name string) *onnxpb.NodeProto {
	t.Helper()
	n, ok := g.nodes[name]
	if !ok {
		t.Fatalf("no node named %s", name)
	}
	return n
}

func (g graph) dims(t *testing.T, init string) []int64 {
	t.Helper()
	i, ok := g.inits[init]
	if !ok {
		t.Fatalf("no initializer named %s", init)
	}
	return i.GetDims()
}

func sameDims(a []int64, b ...int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkWellFormed: opset/IR, topological order, SSA outputs.
func checkWellFormed(t *testing.T, g graph) {
	t.Helper()
	if g.model.GetIrVersion() != 8 || len(g.model.GetOpsetImport()) != 1 || g.model.GetOpsetImport()[0].GetVersion() != 17 {
		t.Errorf("IR %d, opsets %v; want IR 8, opset 17", g.model.GetIrVersion(), g.model.GetOpsetImport())
	}
	defined := map[string]bool{"": true}
	for _, in := range g.model.GetGraph().GetInput() {
		defined[in.GetName()] = true
	}
	for name := range g.inits {
		defined[name] = true
	}
	for _, n := range g.model.GetGraph().GetNode() {
		for _, in := range n.GetInput() {
			if !defined[in] {
				t.Fatalf("node %s reads %s before it is defined", n.GetName(), in)
			}
		}
		for _, out := range n.GetOutput() {
			if defined[out] {
				t.Fatalf("node %s redefines %s", n.GetName(), out)
			}
			defined[out] = true
		}
	}
	for _, out := range g.model.GetGraph().GetOutput() {
		if !defined[out.GetName()] {
			t.Fatalf("graph output %s is never produced", out.GetName())
		}
	}
}

func synthesize(t *testing.T, opts synth.Options) (*synth.Result, graph) {
	t.Helper()
	res, err := synth.Synthesize(tinyConfig(t), filepath.Join(t.TempDir(), "model"), opts)
	if err != nil {
		t.Fatal(err)
	}
	g := load(t, res)
	checkWellFormed(t, g)
	return res, g
}

func TestTorchScriptPattern(t *testing.T) {
	res, g := synthesize(t, synth.Options{Seed: 3})
	anon := regexp.MustCompile(`^onnx::MatMul_[0-9]+$`)
	cfg := tinyConfig(t)
	for l := 0; l < cfg.Layers; l++ {
		for _, k := range qwen2.TargetKinds() {
			scope := qwen2.NodeScope(l, k)
			mm := g.node(t, scope+"/MatMul")
			out, in := cfg.LinearShape(k)
			w := mm.GetInput()[1]
			if !anon.MatchString(w) || !sameDims(g.dims(t, w), int64(in), int64(out)) {
				t.Errorf("%s/MatMul reads %s %v, want an anonymous [%d %d] initializer", scope, w, g.dims(t, w), in, out)
			}
			if cfg.HasBias(k) {
				add := g.node(t, scope+"/Add")
				if add.GetInput()[0] != qwen2.ModulePath(l, k)+".bias" || add.GetInput()[1] != mm.GetOutput()[0] {
					t.Errorf("%s/Add inputs %v", scope, add.GetInput())
				}
			}
		}
	}
	head := g.node(t, "/lm_head/MatMul")
	if head.GetOutput()[0] != "logits" || !anon.MatchString(head.GetInput()[1]) || !sameDims(g.dims(t, head.GetInput()[1]), 64, 2048) {
		t.Errorf("/lm_head/MatMul = %v -> %v", head.GetInput(), head.GetOutput())
	}
	// The exporter's RMSNorm sequence, in order.
	var seq []string
	for _, n := range g.model.GetGraph().GetNode() {
		if len(n.GetName()) > len("/model/layers.0/input_layernorm/") && n.GetName()[:len("/model/layers.0/input_layernorm/")] == "/model/layers.0/input_layernorm/" && n.GetOpType() != "Constant" {
			seq = append(seq, n.GetOpType())
		}
	}
	if want := "[Cast Pow ReduceMean Add Sqrt Div Mul Cast Mul]"; strconv.Quote(want) != strconv.Quote(fmtList(seq)) {
		t.Errorf("input_layernorm ops %v, want %s", seq, want)
	}
	for _, op := range []string{"Gather", "Cos", "Sin", "Slice", "Neg", "Concat", "Unsqueeze", "Expand", "Reshape",
		"Transpose", "Softmax", "Where", "Sigmoid", "LessOrEqual", "Range"} {
		if g.ops[op] == 0 {
			t.Errorf("no %s node", op)
		}
	}
	if g.ops["Gemm"] != 0 || g.ops["Trilu"] != 0 {
		t.Errorf("unexpected ops in the TorchScript form: %v", g.ops)
	}
	// The stored bytes are the exposed weights, transposed.
	w := res.Weights["model.layers.1.self_attn.k_proj.weight"] // [32, 64]
	init := g.inits[g.node(t, "/model/layers.1/self_attn/k_proj/MatMul").GetInput()[1]]
	raw := init.GetRawData()
	if len(raw) != 32*64*4 {
		t.Fatalf("k_proj initializer holds %d bytes", len(raw))
	}
	for j := 0; j < 64; j++ {
		for o := 0; o < 32; o++ {
			got := float64(math.Float32frombits(binary.LittleEndian.Uint32(raw[(j*32+o)*4:])))
			if got != w[o*64+j] {
				t.Fatalf("stored k_proj[%d][%d] = %v, exposed weight [%d][%d] = %v", j, o, got, o, j, w[o*64+j])
			}
		}
	}
	if got := len(res.Weights); got != len(synth.Params(cfg))+1 { // + lm_head alias
		t.Errorf("%d exposed weights, want %d", got, len(synth.Params(cfg))+1)
	}
}

func fmtList(s []string) string {
	out := "["
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out + "]"
}

func TestDynamoPattern(t *testing.T) {
	_, g := synthesize(t, synth.Options{LinearForm: synth.Dynamo})
	if !sameDims(g.dims(t, "model.layers.0.self_attn.q_proj.weight"), 64, 64) ||
		!sameDims(g.dims(t, "model.layers.0.mlp.down_proj.weight"), 64, 128) {
		t.Fatal("dynamo parameters not stored [out, in] under their own names")
	}
	named := regexp.MustCompile(`^node_[A-Za-z]+(_[0-9]+)?$`)
	var linear *onnxpb.NodeProto
	for _, n := range g.model.GetGraph().GetNode() {
		if !named.MatchString(n.GetName()) {
			t.Fatalf("node name %q is not dynamo-style", n.GetName())
		}
		if len(n.GetMetadataProps()) != 1 || n.GetMetadataProps()[0].GetKey() != "pkg.torch.onnx.name_scopes" {
			t.Fatalf("node %s lacks name_scopes metadata", n.GetName())
		}
		if n.GetOpType() == "Transpose" && n.GetInput()[0] == "model.layers.0.self_attn.q_proj.weight" {
			if !sameDims(n.GetAttribute()[0].GetInts(), 1, 0) {
				t.Errorf("q_proj weight transposed with perm %v", n.GetAttribute()[0].GetInts())
			}
			linear = n
		}
	}
	if linear == nil {
		t.Fatal("q_proj weight is not read through a Transpose")
	}
	const want = "['', 'model', 'model.layers.0', 'model.layers.0.self_attn', 'model.layers.0.self_attn.q_proj', 'linear']"
	if got := linear.GetMetadataProps()[0].GetValue(); got != want {
		t.Errorf("q_proj name_scopes = %s, want %s", got, want)
	}
	if add := g.node(t, "node_linear"); add.GetOpType() != "Add" || add.GetInput()[1] != "model.layers.0.self_attn.q_proj.bias" {
		t.Errorf("node_linear = %s(%v)", add.GetOpType(), add.GetInput())
	}
	for name := range g.inits {
		if len(name) > 5 && name[:5] == "onnx:" {
			t.Errorf("anonymous initializer %s in the dynamo form", name)
		}
	}
	if _, ok := g.inits["lm_head.weight"]; ok {
		t.Error("tied dynamo model stores a separate lm_head.weight")
	}
}

func TestGemmPattern(t *testing.T) {
	_, g := synthesize(t, synth.Options{LinearForm: synth.Gemm, DType: synth.Float64})
	n := g.node(t, "/model/layers.1/self_attn/v_proj/Gemm")
	if n.GetInput()[1] != "model.layers.1.self_attn.v_proj.weight" || n.GetInput()[2] != "model.layers.1.self_attn.v_proj.bias" {
		t.Errorf("v_proj Gemm inputs %v", n.GetInput())
	}
	if a := n.GetAttribute(); len(a) != 1 || a[0].GetName() != "transB" || a[0].GetI() != 1 {
		t.Errorf("v_proj Gemm attributes %v", a)
	}
	if !sameDims(g.dims(t, "model.layers.1.self_attn.v_proj.weight"), 32, 64) {
		t.Errorf("v_proj weight dims %v", g.dims(t, "model.layers.1.self_attn.v_proj.weight"))
	}
	if got := g.inits["model.layers.1.self_attn.v_proj.weight"].GetDataType(); got != int32(onnxpb.TensorProto_DOUBLE) {
		t.Errorf("float64 model stores weights as type %d", got)
	}
	if g.ops["Gemm"] != 2*7+1 || g.ops["MatMul"] != 2*2 {
		t.Errorf("%d Gemm and %d MatMul nodes, want 15 and 4 (attention)", g.ops["Gemm"], g.ops["MatMul"])
	}
}

func TestKVCacheInterface(t *testing.T) {
	_, g := synthesize(t, synth.Options{KVCache: true})
	gr := g.model.GetGraph()
	if len(gr.GetInput()) != 3+4 || len(gr.GetOutput()) != 1+4 {
		t.Fatalf("%d inputs and %d outputs", len(gr.GetInput()), len(gr.GetOutput()))
	}
	past := gr.GetInput()[5] // past_key_values.1.key
	dims := past.GetType().GetTensorType().GetShape().GetDim()
	if past.GetName() != "past_key_values.1.key" || len(dims) != 4 || dims[1].GetDimValue() != 2 ||
		dims[2].GetDimParam() != "past_sequence_length" || dims[3].GetDimValue() != 16 {
		t.Errorf("input 5 = %v", past)
	}
	for _, n := range gr.GetNode() {
		if n.GetOutput()[0] == "present.1.value" {
			if n.GetOpType() != "Concat" || n.GetInput()[0] != "past_key_values.1.value" || n.GetAttribute()[0].GetI() != 2 {
				t.Errorf("present.1.value made by %s(%v)", n.GetOpType(), n.GetInput())
			}
			return
		}
	}
	t.Error("no node makes present.1.value")
}

func TestExternalDataLayout(t *testing.T) {
	res, g := synthesize(t, synth.Options{Storage: synth.StorageExternal})
	st, err := os.Stat(res.DataPath)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != res.DataSize {
		t.Errorf("data file is %d bytes, result says %d", st.Size(), res.DataSize)
	}
	var end int64
	external := 0
	for _, init := range g.model.GetGraph().GetInitializer() {
		if init.GetDataLocation() != onnxpb.TensorProto_EXTERNAL {
			if n := numel(init.GetDims()); init.GetName()[:3] != "val" && n >= synth.ExternalMinElements {
				t.Errorf("%s (%d elements) is inline", init.GetName(), n)
			}
			continue
		}
		external++
		kv := map[string]string{}
		for _, e := range init.GetExternalData() {
			kv[e.GetKey()] = e.GetValue()
		}
		off, _ := strconv.ParseInt(kv["offset"], 10, 64)
		n, _ := strconv.ParseInt(kv["length"], 10, 64)
		if kv["location"] != "model.onnx.data" || off%4096 != 0 || off < end || n != numel(init.GetDims())*4 || off+n > st.Size() {
			t.Errorf("%s: external data %v (previous tensor ends at %d)", init.GetName(), kv, end)
		}
		if len(init.GetRawData()) != 0 {
			t.Errorf("%s is external and inline", init.GetName())
		}
		end = off + n
	}
	if external == 0 {
		t.Fatal("no external tensors")
	}
}

func numel64(shape []int) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= int64(d)
	}
	return n
}

func numel(dims []int64) int64 {
	n := int64(1)
	for _, d := range dims {
		n *= d
	}
	return n
}

// TestBigPresetIsSparse synthesizes the real qwen2.5-0.5b shapes: the
// weights are zeros, the multi-GB data file is a hole, and no weights are
// drawn.
func TestBigPresetIsSparse(t *testing.T) {
	cfg, err := qwen2.Preset("qwen2.5-0.5b")
	if err != nil {
		t.Fatal(err)
	}
	res, err := synth.Synthesize(cfg, filepath.Join(t.TempDir(), "m"), synth.Options{KVCache: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Weights != nil || res.DataPath == "" {
		t.Fatalf("weights drawn (%v) or no data file (%q)", res.Weights != nil, res.DataPath)
	}
	st, err := os.Stat(res.DataPath)
	if err != nil {
		t.Fatal(err)
	}
	// Every tensor of at least 1024 elements once, plus the TorchScript
	// form's transposed lm_head copy.
	want := int64(cfg.Vocab*cfg.Hidden) * 4
	for _, p := range synth.Params(cfg) {
		if n := numel64(p.Shape); n >= synth.ExternalMinElements {
			want += n * 4
		}
	}
	if st.Size() < want || st.Size() > want+int64(len(synth.Params(cfg))+1)*4096 {
		t.Errorf("data file is %d bytes, want about %d", st.Size(), want)
	}
	allocated := st.Sys().(*syscall.Stat_t).Blocks * 512
	if allocated > 1<<20 {
		t.Errorf("data file occupies %d bytes on disk, want a hole", allocated)
	}
	g := load(t, res)
	checkWellFormed(t, g)
	if !sameDims(g.dims(t, g.node(t, "/model/layers.23/mlp/down_proj/MatMul").GetInput()[1]), 4864, 896) {
		t.Error("layer 23 down_proj has the wrong shape")
	}
}

func TestOutputDirectoryIsAtomic(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "m")
	cfg := tinyConfig(t)
	if _, err := synth.Synthesize(cfg, dir, synth.Options{}); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "model.onnx"))
	if _, err := synth.Synthesize(cfg, dir, synth.Options{Seed: 9}); !errors.Is(err, synth.ErrExists) {
		t.Fatalf("second Synthesize into %s: %v, want ErrExists", dir, err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, "model.onnx"))
	if string(before) != string(after) {
		t.Fatal("refused Synthesize changed the model")
	}
	if _, err := synth.Synthesize(cfg, dir, synth.Options{Seed: 9, Force: true}); err != nil {
		t.Fatal(err)
	}
	forced, _ := os.ReadFile(filepath.Join(dir, "model.onnx"))
	if string(forced) == string(before) {
		t.Fatal("--force with another seed left the model unchanged")
	}
	bad := cfg
	bad.Heads = 5
	if _, err := synth.Synthesize(bad, filepath.Join(parent, "bad"), synth.Options{}); err == nil {
		t.Fatal("heads 5 with kv heads 2 accepted")
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 1 || entries[0].Name() != "m" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("parent holds %v, want only m", names)
	}
}

func TestSeedsAndParams(t *testing.T) {
	cfg := tinyConfig(t)
	var n int64
	for _, p := range synth.Params(cfg) {
		c := int64(1)
		for _, d := range p.Shape {
			c *= int64(d)
		}
		n += c
	}
	if n != cfg.ParamCount() {
		t.Errorf("Params holds %d values, ParamCount says %d", n, cfg.ParamCount())
	}
	a, _ := synthesize(t, synth.Options{Seed: 1})
	b, _ := synthesize(t, synth.Options{Seed: 1})
	c, _ := synthesize(t, synth.Options{Seed: 2})
	name := "model.layers.0.mlp.up_proj.weight"
	if a.Weights[name][5] != b.Weights[name][5] || a.Weights[name][5] == c.Weights[name][5] {
		t.Error("weights are not a function of the seed")
	}
	drawn := synth.DrawWeights(cfg, 1, synth.Float32)
	for k, v := range a.Weights {
		if len(drawn[k]) != len(v) || drawn[k][len(v)-1] != v[len(v)-1] {
			t.Errorf("DrawWeights differs from Result.Weights at %s", k)
		}
	}
}

// TestForceReplacesOnlySynthDirs: Force replaces a directory Synthesize
// wrote, or an empty one; a directory holding anything else (another
// model, the user's files) is refused and left as it was.
func TestForceReplacesOnlySynthDirs(t *testing.T) {
	cfg := tinyConfig(t)
	parent := t.TempDir()
	foreign := filepath.Join(parent, "mine")
	os.Mkdir(foreign, 0o755)
	os.WriteFile(filepath.Join(foreign, "model.onnx"), []byte("not from dartc"), 0o644)
	os.WriteFile(filepath.Join(foreign, "notes.txt"), []byte("keep"), 0o644)
	if _, err := synth.Synthesize(cfg, foreign, synth.Options{Force: true}); !errors.Is(err, outpath.ErrNotReplaceable) {
		t.Fatalf("Force into a foreign directory: %v, want a refusal", err)
	}
	for name, want := range map[string]string{"model.onnx": "not from dartc", "notes.txt": "keep"} {
		if b, _ := os.ReadFile(filepath.Join(foreign, name)); string(b) != want {
			t.Fatalf("%s changed: %q", name, b)
		}
	}
	// A synthesized directory with a file added by the user is not ours either.
	dir := filepath.Join(parent, "m")
	if _, err := synth.Synthesize(cfg, dir, synth.Options{}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("keep"), 0o644)
	if _, err := synth.Synthesize(cfg, dir, synth.Options{Force: true}); !errors.Is(err, outpath.ErrNotReplaceable) {
		t.Fatalf("Force over a synthesized directory with a user file: %v, want a refusal", err)
	}
	os.Remove(filepath.Join(dir, "notes.txt"))
	if _, err := synth.Synthesize(cfg, dir, synth.Options{Force: true, Seed: 4}); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(parent, "empty")
	os.Mkdir(empty, 0o755)
	if _, err := synth.Synthesize(cfg, empty, synth.Options{Force: true}); err != nil {
		t.Fatal(err)
	}
}
