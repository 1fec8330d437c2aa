package runtime_test

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/internal/npz"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/runtime"
)

const (
	scatterDir = "testdata/static-scatter-bias-decoder"
	llamaModel = "testdata/tiny-random-llama-fp16/model.onnx"
)

// tensorOf converts an npz array to a runtime tensor of the same dtype.
func tensorOf(t *testing.T, a *npz.Array) *runtime.Tensor {
	t.Helper()
	switch a.DType {
	case "f4":
		v, _ := a.Float32()
		x, err := runtime.FromFloat32(a.Shape, v)
		if err != nil {
			t.Fatal(err)
		}
		return x
	case "i8":
		v, _ := a.Int64()
		x, err := runtime.FromInt64(a.Shape, v)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	t.Fatalf("golden array dtype %s not expected", a.DType)
	return nil
}

// goldenTol bounds |got − want| against golden_io.npz. The golden outputs
// come from another ONNX Runtime build on other hardware: already layer 0's
// value projection of position 0 (RMSNorm, MatMul, bias; no attention)
// differs by 3.8e-6 (1.5 ulp of a value near 25), and the rounding grows
// through two layers to 7.3e-5 on the last position's logits. 1e-5 would
// reject that rounding; 1e-4 still catches any wrong input or wiring, which
// moves logits by O(1).
const goldenTol = 1e-4

// goldenClose reports the max absolute difference and the max difference
// relative to max(|want|, 1).
func goldenClose(got, want []float64) (maxAbs, maxRel float64) {
	for i, v := range got {
		d := math.Abs(v - want[i])
		maxAbs = math.Max(maxAbs, d)
		maxRel = math.Max(maxRel, d/math.Max(math.Abs(want[i]), 1))
	}
	return maxAbs, maxRel
}

// TestGoldenStaticScatterDecoder runs the upstream exporter's decoder on the
// inputs it recorded and compares every output with the recorded one, and
// checks the facts the upstream test asserts (argmax of the last logits:
// 11 after prefill, 36 after the decode step).
func TestGoldenStaticScatterDecoder(t *testing.T) {
	orttest.Init(t)
	b, err := os.ReadFile(scatterDir + "/golden_io.npz")
	if err != nil {
		t.Fatal(err)
	}
	golden, err := npz.Read(b)
	if err != nil {
		t.Fatal(err)
	}
	s, err := runtime.NewSession(scatterDir+"/model.onnx", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	for _, phase := range []string{"prefill", "decode"} {
		inputs := map[string]*runtime.Tensor{}
		for _, in := range s.Inputs() {
			a := golden[phase+"_in."+in.Name]
			if a == nil {
				t.Fatalf("golden_io.npz has no %s_in.%s", phase, in.Name)
			}
			inputs[in.Name] = tensorOf(t, a)
		}
		got, err := s.Run(inputs)
		if err != nil {
			t.Fatal(err)
		}
		for _, out := range s.Outputs() {
			want, _ := golden[phase+"_out."+out.Name].Float64()
			g := got[out.Name]
			if fmt.Sprint(g.Shape()) != fmt.Sprint(golden[phase+"_out."+out.Name].Shape) {
				t.Fatalf("%s %s: shape %v, want %v", phase, out.Name, g.Shape(), golden[phase+"_out."+out.Name].Shape)
			}
			maxAbs, maxRel := goldenClose(g.Floats(), want)
			t.Logf("%s %-22s max |diff| = %.3g, relative %.3g", phase, out.Name, maxAbs, maxRel)
			if !(maxAbs <= goldenTol) {
				t.Errorf("%s %s: max |diff| %.3g > %g", phase, out.Name, maxAbs, goldenTol)
			}
		}
		logits := got["logits"].Floats()
		last := logits[len(logits)-256:]
		best := 0
		for i, v := range last {
			if v > last[best] {
				best = i
			}
		}
		if want := map[string]int{"prefill": 11, "decode": 36}[phase]; best != want {
			t.Errorf("%s: argmax of the last logits = %d, want %d", phase, best, want)
		}
	}
}

// scatterInputs are zero inputs of the static-scatter decoder fixture, two
// tokens of one row.
func scatterInputs() map[string]*runtime.Tensor {
	in := map[string]*runtime.Tensor{
		"input_ids":        runtime.NewTensor(runtime.Int64, 1, 2),
		"position_ids":     runtime.NewTensor(runtime.Int64, 1, 2),
		"write_indices":    runtime.NewTensor(runtime.Int64, 1),
		"nonpad_kv_seqlen": runtime.NewTensor(runtime.Int64, 1),
	}
	for l := range 2 {
		in[fmt.Sprintf("key_cache.%d", l)] = runtime.NewTensor(runtime.Float32, 1, 16, 32)
		in[fmt.Sprintf("value_cache.%d", l)] = runtime.NewTensor(runtime.Float32, 1, 16, 32)
	}
	return in
}

func TestRunRejectsBadInputs(t *testing.T) {
	orttest.Init(t)
	s, err := runtime.NewSession(scatterDir+"/model.onnx", &runtime.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	good := scatterInputs
	copy(good()["input_ids"].Int64(), []int64{1, 2})
	if _, err := s.Run(good(), "logits"); err != nil {
		t.Fatalf("well-formed inputs: %v", err)
	}
	cases := []struct {
		name   string
		mutate func(map[string]*runtime.Tensor)
		want   string
	}{
		{"missing", func(m map[string]*runtime.Tensor) { delete(m, "position_ids") }, "missing input(s) position_ids int64[batch,sequence_len]"},
		{"unknown", func(m map[string]*runtime.Tensor) { m["role_ids"] = runtime.NewTensor(runtime.Int64, 1, 2) }, `unknown input "role_ids"`},
		{"dtype", func(m map[string]*runtime.Tensor) { m["input_ids"] = runtime.NewTensor(runtime.Int32, 1, 2) }, "input_ids: got int32[1 2], want input_ids int64"},
		{"rank", func(m map[string]*runtime.Tensor) { m["input_ids"] = runtime.NewTensor(runtime.Int64, 2) }, "rank 1"},
		{"fixed dim", func(m map[string]*runtime.Tensor) { m["key_cache.0"] = runtime.NewTensor(runtime.Float32, 1, 8, 32) }, "key_cache.0: dim 1 is 8, want 16"},
		{"symbolic dims disagree", func(m map[string]*runtime.Tensor) { m["position_ids"] = runtime.NewTensor(runtime.Int64, 1, 3) }, "sequence_len) is 3, but another input set sequence_len = 2"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := good()
			c.mutate(in)
			_, err := s.Run(in, "logits")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, c.want)
			}
		})
	}
	if _, err := s.Run(good(), "nope"); err == nil || !strings.Contains(err.Error(), `no output "nope"`) {
		t.Fatalf("unknown output: err = %v", err)
	}
}

func TestNewSessionErrors(t *testing.T) {
	orttest.Init(t)
	if _, err := runtime.NewSession("testdata/does-not-exist.onnx", nil); err == nil || !strings.Contains(err.Error(), "does-not-exist.onnx") {
		t.Errorf("missing file: err = %v", err)
	}
	_, err := runtime.NewSession(scatterDir+"/model.onnx", &runtime.Options{Device: "tpu"})
	if err == nil || !strings.Contains(err.Error(), `unknown device "tpu"`) {
		t.Errorf("bad device: err = %v", err)
	}
	_, err = runtime.NewSession(scatterDir+"/model.onnx", &runtime.Options{Outputs: []string{"present.0.key"}})
	if err == nil || !strings.Contains(err.Error(), `no output "present.0.key"`) {
		t.Errorf("bad output restriction: err = %v", err)
	}
}

// TestCUDAUnavailable checks the message a CPU-only ONNX Runtime build gives
// for --device cuda (the npm build the tests use). Where the library does
// ship the CUDA provider, a CUDA session either opens or fails with
// ErrNoCUDA: never with an unexplained error.
func TestCUDAUnavailable(t *testing.T) {
	lib, _ := runtime.Init()
	orttest.Init(t)
	dir := lib[:strings.LastIndex(lib, "/")+1]
	_, statErr := os.Stat(dir + "libonnxruntime_providers_cuda.so")
	s, err := runtime.NewSession(scatterDir+"/model.onnx", &runtime.Options{Device: runtime.DeviceCUDA})
	if statErr == nil {
		if err == nil {
			s.Destroy()
		} else if !errors.Is(err, runtime.ErrNoCUDA) {
			t.Fatalf("a build with the CUDA provider: err = %v, want nil or ErrNoCUDA", err)
		}
		return
	}
	if !errors.Is(err, runtime.ErrNoCUDA) || !strings.Contains(err.Error(), "--device cpu") {
		t.Fatalf("err = %v, want ErrNoCUDA with the fix", err)
	}
	t.Log(err)
}

func TestOptionsOptimizationAndConfig(t *testing.T) {
	orttest.Init(t)
	// The same graph with optimizations off and a disabled optimizer must
	// give the golden logits too: options reach ONNX Runtime without changing results.
	s, err := runtime.NewSession(scatterDir+"/model.onnx", &runtime.Options{
		Optimization: runtime.OptimizeNone, IntraOpThreads: 1, NoMemArena: true,
		Config:  map[string]string{"optimization.disable_specified_optimizers": "ConstantFolding"},
		Outputs: []string{"logits"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	if n := len(s.Outputs()); n != 1 {
		t.Fatalf("%d outputs, want only logits", n)
	}
	b, _ := os.ReadFile(scatterDir + "/golden_io.npz")
	golden, _ := npz.Read(b)
	in := map[string]*runtime.Tensor{}
	for _, io := range s.Inputs() {
		in[io.Name] = tensorOf(t, golden["prefill_in."+io.Name])
	}
	out, err := s.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := golden["prefill_out.logits"].Float64()
	if maxAbs, maxRel := goldenClose(out["logits"].Floats(), want); !(maxAbs <= goldenTol) {
		t.Fatalf("logits with optimizations off: max diff %.3g (relative %.3g)", maxAbs, maxRel)
	}
}

// TestForGraph: a compiled graph's manifest entry sets the session's config
// entries (over the caller's) and its optimization level; an unknown level
// is refused with the fix.
func TestForGraph(t *testing.T) {
	base := runtime.Options{IntraOpThreads: 2, Config: map[string]string{"a": "1", "b": "caller"}}
	o, err := runtime.ForGraph(&manifest.Graph{File: "adamw.onnx", Optimization: manifest.OptimizationNone,
		SessionConfig: map[string]string{"b": "graph"}}, base)
	if err != nil {
		t.Fatal(err)
	}
	if o.Optimization != runtime.OptimizeNone || o.IntraOpThreads != 2 || o.Config["a"] != "1" || o.Config["b"] != "graph" {
		t.Fatalf("ForGraph = %+v", o)
	}
	if base.Config["b"] != "caller" {
		t.Fatal("ForGraph changed the caller's config")
	}
	if o, err = runtime.ForGraph(&manifest.Graph{File: "train.onnx"}, runtime.Options{}); err != nil || o.Optimization != runtime.OptimizeAll {
		t.Fatalf("default: %+v, %v", o, err)
	}
	_, err = runtime.ForGraph(&manifest.Graph{File: "train.onnx", Optimization: "fast"}, runtime.Options{})
	if err == nil || !strings.Contains(err.Error(), `"fast"`) || !strings.Contains(err.Error(), "recompile") {
		t.Fatalf("unknown level: %v", err)
	}
}

// TestRunIntoRefusesUnknownBuffer: a buffer in RunInto's into map under a
// name that is no output of the session — a typo, or an output that
// Options.Outputs left out — would never be written, and the caller would
// read zeros as if they were results. RunInto must refuse it, naming the
// buffer and listing the outputs, as BoundSession does.
func TestRunIntoRefusesUnknownBuffer(t *testing.T) {
	orttest.Init(t)
	inputs := scatterInputs
	for _, c := range []struct {
		name    string
		outputs []string // Options.Outputs
		buffer  string
		shape   []int64
	}{
		{"typo", nil, "logitz", []int64{1, 2, 256}},
		{"output left out by Options.Outputs", []string{"logits"}, "updated_key_cache.0", []int64{1, 16, 32}},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := runtime.NewSession(scatterDir+"/model.onnx", &runtime.Options{IntraOpThreads: 1, Outputs: c.outputs})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Destroy()
			// The well-formed call runs: only the stray buffer is at fault.
			logits := runtime.NewTensor(runtime.Float32, 1, 2, 256)
			if _, err := s.RunInto(inputs(), map[string]*runtime.Tensor{"logits": logits}, "logits"); err != nil {
				t.Fatalf("a buffer for logits: %v", err)
			}
			into := map[string]*runtime.Tensor{c.buffer: runtime.NewTensor(runtime.Float32, c.shape...)}
			_, err = s.RunInto(inputs(), into, "logits")
			if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("output buffer %q names no output", c.buffer)) || !strings.Contains(err.Error(), "outputs: logits") {
				t.Fatalf("err = %v, want a refusal naming %q and listing the outputs", err, c.buffer)
			}
		})
	}
}

// TestRankZeroUnrankedOutput: an output of undeclared rank that comes back
// rank 0 is an error that says what to do; it used to panic while the run
// released its values (a typed nil in the output slot).
func TestRankZeroUnrankedOutput(t *testing.T) {
	orttest.Init(t)
	m := &ir.Model{IRVersion: 8, Opsets: []ir.Opset{{Version: 17}}, Graph: &ir.Graph{Name: "dot"}}
	g := m.Graph
	g.Inputs = []*ir.ValueInfo{{Name: "a", Type: ir.TensorType(ir.Float32, ir.Dim{Value: 3})}, {Name: "b", Type: ir.TensorType(ir.Float32, ir.Dim{Value: 3})}}
	g.Nodes = []*ir.Node{{Name: "dot", OpType: "MatMul", Inputs: []string{"a", "b"}, Outputs: []string{"y"}}}
	y := ir.TensorType(ir.Float32, ir.Sym("n"))
	y.Shape = false // unranked
	g.Outputs = []*ir.ValueInfo{{Name: "y", Type: y}}
	path := filepath.Join(t.TempDir(), "dot.onnx")
	if err := ir.Save(m, path, ir.EmitOptions{}); err != nil {
		t.Fatal(err)
	}
	s, err := runtime.NewSession(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	a, _ := runtime.FromFloat32([]int64{3}, []float32{1, 2, 3})
	_, err = s.Run(map[string]*runtime.Tensor{"a": a, "b": a})
	if err == nil || !strings.Contains(err.Error(), "declare the output's shape") {
		t.Fatalf("a rank-0 result of an unranked output: %v", err)
	}
}
