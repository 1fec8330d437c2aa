package compiler_test

// Mixed precision (--precision fp16|bf16): the emitted graphs against ONNX
// Runtime 1.30's CUDA kernel table, the Casts the rewrite places, and the
// numerics against the float32 graphs and PyTorch autocast.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/internal/float16"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/passes"
	"github.com/dartc/dartc/passes/kernels"
)

func compilePrecision(t *testing.T, exporter, precision, provider string) string {
	t.Helper()
	out, _ := compileFixture(t, filepath.Join(exportDir, exporter, "model.onnx"),
		compiler.Options{Rank: 4, Alpha: 8, Precision: precision, Provider: provider})
	return out
}

// TestPrecisionGraphsHaveCUDAKernels: every node of the fp16 and bf16
// decode, logprobs and train graphs, sub-graphs included, has a kernel in
// ONNX Runtime 1.30's CUDA table for its element type.
func TestPrecisionGraphsHaveCUDAKernels(t *testing.T) {
	table, err := kernels.For(kernels.CUDA)
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range []string{"torchscript", "dynamo"} {
		for _, prec := range []string{"fp16", "bf16"} {
			out := compilePrecision(t, ex, prec, kernels.CUDA)
			for _, g := range []string{"decode", "logprobs", "train"} {
				m, err := ir.Load(filepath.Join(out, g+".onnx"))
				if err != nil {
					t.Fatal(err)
				}
				gaps, err := passes.CheckKernels(m, table)
				if err != nil {
					t.Fatal(err)
				}
				lowNodes := countLowNodes(t, m, prec)
				t.Logf("%s %s %s: %d nodes, %d computing in %s, %d without a CUDA kernel", ex, prec, g, len(m.Graph.Nodes), lowNodes, prec, len(gaps))
				if len(gaps) > 0 {
					t.Errorf("%s %s %s.onnx: no CUDA kernel for %d nodes, e.g. %v", ex, prec, g, len(gaps), gaps[:min(5, len(gaps))])
				}
				if lowNodes == 0 {
					t.Errorf("%s %s %s.onnx: nothing computes in %s", ex, prec, g, prec)
				}
			}
		}
	}
}

// countLowNodes counts the MatMul and Gemm nodes (main graph) whose first
// input is in the low type.
func countLowNodes(t *testing.T, m *ir.Model, prec string) int {
	dt := ir.Float16
	if prec == "bf16" {
		dt = ir.BFloat16
	}
	types, err := passes.ValueTypes(m.Graph, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, nd := range m.Graph.Nodes {
		if (nd.OpType == "MatMul" || nd.OpType == "Gemm") && types[nd.Inputs[0]] == dt {
			n++
		}
	}
	return n
}

// TestKernelCheckRejects: the check finds a bfloat16 ReduceMean (no CUDA
// kernel), a float32 graph's int64 Pad, and passes the same ReduceMean in
// float16.
func TestKernelCheckRejects(t *testing.T) {
	table, _ := kernels.For(kernels.CUDA)
	for _, c := range []struct {
		op   string
		dt   ir.DType
		want bool
	}{{"ReduceMean", ir.BFloat16, true}, {"ReduceMean", ir.Float16, false}, {"Pad", ir.Int64, true}, {"Pad", ir.Float16, false}, {"LogSoftmax", ir.BFloat16, true}} {
		g := &ir.Graph{Name: "g", Inputs: []*ir.ValueInfo{{Name: "x", Type: ir.TensorType(c.dt, ir.Dims(2, 3)...)}},
			Outputs: []*ir.ValueInfo{{Name: "y", Type: ir.TensorType(c.dt, ir.Dims(2, 3)...)}}}
		b := ir.NewBuilder(g)
		in := []string{"x"}
		if c.op == "Pad" {
			in = append(in, b.Ints("pads", 0, 0, 0, 1))
		}
		g.Nodes = append(g.Nodes, &ir.Node{Name: "n", OpType: c.op, Inputs: in, Outputs: []string{"y"}})
		gaps, err := passes.CheckKernels(&ir.Model{Graph: g}, table)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(gaps) > 0; got != c.want {
			t.Errorf("%s on %s: gap reported %v, want %v (%v)", c.op, c.dt, got, c.want, gaps)
		}
	}
	// The float32 train graph of an export pads int64 target ids: a gap
	// the precision rewrite removes (TestPrecisionGraphsHaveCUDAKernels).
	out, _ := compileExport(t, "torchscript")
	m, err := ir.Load(filepath.Join(out, "train.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	gaps, _ := passes.CheckKernels(m, table)
	if len(gaps) == 0 || !strings.Contains(fmt.Sprint(gaps), "int64") {
		t.Errorf("float32 train.onnx: expected the int64 Pad gap, got %v", gaps)
	}
}

// TestPrecisionCasts: Casts sit at precision boundaries only. No value is
// cast back to the type it was cast from (no ping-pong), no value is cast
// twice to one float type in one graph, every float32 adapter is cast to
// the low type exactly once (its master weight cast at use), and the other
// Casts between float32 and the low type are few per decoder layer.
func TestPrecisionCasts(t *testing.T) {
	for _, ex := range []string{"torchscript", "dynamo"} {
		f32, man := compileExport(t, ex)
		adapters := map[string]bool{}
		for _, a := range man.AdapterNames() {
			adapters[a] = true
		}
		for _, prec := range []string{"fp16", "bf16"} {
			out := compilePrecision(t, ex, prec, kernels.CUDA)
			for _, g := range []string{"decode", "logprobs", "train"} {
				base := castStatsOf(t, filepath.Join(f32, g+".onnx"), adapters)
				st := castStatsOf(t, filepath.Join(out, g+".onnx"), adapters)
				perLayer := float64(st.boundary) / float64(man.Model.Layers)
				t.Logf("%s %s %s: %d Casts (float32 graph: %d): %d of adapters, %d other float32↔%s (%.1f per layer); %d round trips, %d duplicates",
					ex, prec, g, st.casts, base.casts, st.adapterCasts, st.boundary, prec, perLayer, st.pingPong, st.twice)
				if st.pingPong > 0 || st.twice > 0 {
					t.Errorf("%s %s %s.onnx: %d Casts back to the source type, %d duplicate Casts", ex, prec, g, st.pingPong, st.twice)
				}
				if st.adapterCasts != len(adapters) {
					t.Errorf("%s %s %s.onnx: %d adapter Casts for %d adapters", ex, prec, g, st.adapterCasts, len(adapters))
				}
				// Each query block of the attention beyond the first has
				// its own float32 softmax: 4 more Casts per layer, 11 with
				// its backward.
				extra := float64(passes.DefaultAttentionBlocks - 1)
				if limit := map[string]float64{"decode": 20, "logprobs": 20 + 4*extra, "train": 72 + 11*extra}[g]; perLayer > limit {
					t.Errorf("%s %s %s.onnx: %.1f Casts added per layer, more than %g", ex, prec, g, perLayer, limit)
				}
			}
		}
	}
}

type castCounts struct{ casts, adapterCasts, boundary, pingPong, twice int }

func castStatsOf(t *testing.T, path string, adapters map[string]bool) castCounts {
	m, err := ir.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var c castCounts
	castStats(t, m.Graph, nil, adapters, &c)
	return c
}

// castStats counts Casts (sub-graphs included), those of adapter inputs
// (alone or concatenated by role),
// Casts of a Cast's output back to that Cast's input type, and repeated
// Casts of one value to one type within a graph.
func castStats(t *testing.T, g *ir.Graph, outer map[string]ir.DType, adapters map[string]bool, c *castCounts) {
	t.Helper()
	all, err := scopeTypes(g, outer)
	if err != nil {
		t.Fatal(err)
	}
	castOf := map[string]string{} // Cast output → its input
	seen := map[string]bool{}
	stacked := map[string]int{} // Concat of adapters (dual-lora-stacked) → how many
	for _, n := range g.Nodes {
		if n.OpType == "Concat" {
			k := 0
			for _, in := range n.Inputs {
				if adapters[in] {
					k++
				}
			}
			if k == len(n.Inputs) {
				stacked[n.Outputs[0]] = k
			}
		}
		if n.OpType == "Cast" {
			c.casts++
			in, to := n.Inputs[0], ir.DType(n.AttrInt("to", 0))
			if adapters[in] {
				c.adapterCasts++
			} else if k := stacked[in]; k > 0 {
				c.adapterCasts += k // each adapter cast once, in its concatenation
			} else if isLow(to) || isLow(all[in]) {
				c.boundary++
			}
			if src, ok := castOf[in]; ok && all[src] == to && all[in] != to && all[src].IsFloat() && all[in].IsFloat() {
				c.pingPong++
			}
			key := in + "|" + to.String()
			if seen[key] && to.IsFloat() {
				c.twice++
			}
			seen[key] = true
			castOf[n.Outputs[0]] = in
		}
		for _, i := range subgraphIdx(n) {
			body, err := ir.GraphFromProto(n.Attrs[i].GetG(), "")
			if err != nil {
				t.Fatal(err)
			}
			castStats(t, body, all, adapters, c)
		}
	}
}

// TestPrecisionWeightsFile: the backbone's external weights are converted
// into one new data file beside the graphs, each value the source's
// rounded to nearest even, shared by the three graphs; norm weights stay
// float32.
func TestPrecisionWeightsFile(t *testing.T) {
	cfg, err := qwen2.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	res, err := synth.Synthesize(cfg, filepath.Join(t.TempDir(), "m"), synth.Options{Seed: 3, Storage: synth.StorageExternal})
	if err != nil {
		t.Fatal(err)
	}
	src, err := ir.Load(res.ModelPath)
	if err != nil {
		t.Fatal(err)
	}
	out, man := compileFixture(t, res.ModelPath, compiler.Options{Precision: "bf16"})
	if man.Precision == nil || man.Precision.WeightsFile != "weights.bfloat16.data" || man.Precision.DType != "bfloat16" {
		t.Fatalf("manifest precision %+v", man.Precision)
	}
	offsets := map[string]int64{}
	for _, g := range []string{"decode", "logprobs", "train"} {
		m, err := ir.Load(filepath.Join(out, g+".onnx"))
		if err != nil {
			t.Fatal(err)
		}
		converted := 0
		for _, w := range m.Graph.Initializers {
			s := src.Graph.Initializer(w.Name)
			if w.External == nil || s == nil {
				continue
			}
			if w.External.Location != man.Precision.WeightsFile {
				if w.DType != ir.Float32 {
					t.Errorf("%s: %s is %s in the source's data file", g, w.Name, w.DType)
				}
				continue
			}
			if off, ok := offsets[w.Name]; ok && off != w.External.Offset {
				t.Errorf("%s: %s at offset %d, %d in another graph", g, w.Name, w.External.Offset, off)
			}
			offsets[w.Name] = w.External.Offset
			got, err := w.Float64s()
			if err != nil {
				t.Fatal(err)
			}
			want, _ := s.Float64s()
			for i := range want {
				if r := float64(float16.BFloat16ToFloat32(float16.BFloat16FromFloat32(float32(want[i])))); got[i] != r {
					t.Fatalf("%s: %s[%d] = %g, want %g", g, w.Name, i, got[i], r)
				}
			}
			converted++
		}
		if converted == 0 {
			t.Errorf("%s: no weight in %s", g, man.Precision.WeightsFile)
		}
		t.Logf("%s: %d weights in %s", g, converted, man.Precision.WeightsFile)
	}
}

// TestPrecisionBadInput: an unknown precision or provider, or a low
// precision for a float64 model, is refused with a clear error and
// nothing written.
func TestPrecisionBadInput(t *testing.T) {
	cfg, _ := qwen2.Preset("tiny")
	f64, err := synth.Synthesize(cfg, filepath.Join(t.TempDir(), "m"), synth.Options{DType: synth.Float64})
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(exportDir, "torchscript", "model.onnx")
	for _, c := range []struct {
		src  string
		opts compiler.Options
		want string
	}{
		{src, compiler.Options{Precision: "fp8"}, "choose fp32, fp16, bf16 or fp64"},
		{src, compiler.Options{Precision: "bf16", Provider: "tpu"}, "choose cuda or cpu"},
		{f64.ModelPath, compiler.Options{Precision: "fp16"}, "applies to float32 models"},
	} {
		out := filepath.Join(t.TempDir(), "out")
		_, err := compiler.Compile(c.src, out, c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want %q", c.opts, err, c.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%+v: %s written", c.opts, out)
		}
	}
}

// TestPrecisionFloat32WhereNeeded: in the fp16 and bf16 graphs the ops
// that need float32 for accuracy compute in float32 — RMSNorm statistics
// (Pow, ReduceMean, Sqrt), softmax, the rotary angles (Cos, Sin), the loss
// head (LogSoftmax, Exp, Log, the reductions) — and decode's sampler
// (its If branches) holds no low-precision value at all.
func TestPrecisionFloat32WhereNeeded(t *testing.T) {
	critical := map[string]bool{"Pow": true, "ReduceMean": true, "Sqrt": true, "Softmax": true, "Cos": true, "Sin": true,
		"LogSoftmax": true, "Exp": true, "Log": true, "ReduceLogSumExp": true, "ReduceMax": true, "ArgMax": true, "TopK": true}
	for _, ex := range []string{"torchscript", "dynamo"} {
		for _, prec := range []string{"fp16", "bf16"} {
			out := compilePrecision(t, ex, prec, kernels.CUDA)
			for _, g := range []string{"decode", "logprobs", "train"} {
				m, err := ir.Load(filepath.Join(out, g+".onnx"))
				if err != nil {
					t.Fatal(err)
				}
				seen := map[string]int{}
				var walk func(g *ir.Graph, outer map[string]ir.DType, inIf bool)
				walk = func(g *ir.Graph, outer map[string]ir.DType, inIf bool) {
					all, err := scopeTypes(g, outer)
					if err != nil {
						t.Fatal(err)
					}
					for _, n := range g.Nodes {
						for _, in := range n.Inputs {
							if isLow(all[in]) && (critical[n.OpType] || inIf) {
								t.Errorf("%s %s %s.onnx: %s reads %s in %s", ex, prec, g.Name, n, in, all[in])
							}
						}
						if critical[n.OpType] {
							seen[n.OpType]++
						}
						for _, i := range subgraphIdx(n) {
							body, err := ir.GraphFromProto(n.Attrs[i].GetG(), "")
							if err != nil {
								t.Fatal(err)
							}
							walk(body, all, inIf || n.OpType == "If")
						}
					}
				}
				walk(m.Graph, nil, false)
				t.Logf("%s %s %s: float32 %v", ex, prec, g, seen)
			}
		}
	}
}

// TestPrecisionDeterministic: compiling one model twice at low precision
// gives the same train graph, byte for byte (the Casts that give the
// float32 outputs back are placed in output order).
func TestPrecisionDeterministic(t *testing.T) {
	src := filepath.Join(exportDir, "torchscript", "model.onnx")
	opts := compiler.Options{Rank: 4, Alpha: 8, Precision: "fp16", Provider: kernels.CUDA, Graphs: []string{"decode", "train"}}
	var files [2][]byte
	for i := range files {
		out, _ := compileFixture(t, src, opts)
		b, err := os.ReadFile(filepath.Join(out, "train.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		files[i] = b
	}
	if !bytes.Equal(files[0], files[1]) {
		t.Errorf("two compilations of %s at fp16 wrote different train.onnx files", src)
	}
}
