package compiler_test

// Parity with the framework that exported the model: the tiny Qwen2.5 of
// models/export, exported by the TorchScript and the dynamo exporters, and
// the PyTorch reference outputs committed beside it (models/export/README.md
// documents every tensor).

import (
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/passes"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/safetensors"
)

const exportDir = "../models/export/testdata/tiny-qwen2.5"

var exporters = []struct{ name, evidence string }{
	{"torchscript", "node-name"},
	{"dynamo", "name-scopes"},
	{"torchscript-nofold", "node-name"},
	{"dynamo-noopt", "name-scopes"},
}

type reference struct{ f *safetensors.File }

func loadReference(t *testing.T) reference {
	t.Helper()
	f, err := safetensors.Read(filepath.Join(exportDir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	return reference{f}
}

func (r reference) get(t *testing.T, name string) safetensors.Tensor {
	t.Helper()
	x, err := r.f.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func (r reference) floats(t *testing.T, name string) []float64 {
	t.Helper()
	x := r.get(t, name)
	var v []float64
	var err error
	if x.DType == safetensors.F64 {
		v, err = x.Float64s()
	} else {
		var f []float32
		f, err = x.Float32s()
		for _, a := range f {
			v = append(v, float64(a))
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (r reference) ints(t *testing.T, name string) *runtime.Tensor {
	t.Helper()
	x := r.get(t, name)
	v, err := x.Int64s()
	if err != nil {
		t.Fatal(err)
	}
	return i64(t, x.Shape, v)
}

func (r reference) f32(t *testing.T, name string) *runtime.Tensor {
	t.Helper()
	x := r.get(t, name)
	v, err := x.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	return f32(t, x.Shape, v)
}

// relDiff is max |got − want| / max |want|, the measure the export script
// reports.
func relDiff(got, want []float64) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	d, m := 0.0, 0.0
	for i := range want {
		d = math.Max(d, math.Abs(got[i]-want[i]))
		m = math.Max(m, math.Abs(want[i]))
	}
	return d / m
}

// batchFeeds holds the reference batch (ids, mask, positions, roles).
func (r reference) batchFeeds(t *testing.T, in map[string]*runtime.Tensor) map[string]*runtime.Tensor {
	t.Helper()
	in["input_ids"], in["attention_mask"], in["position_ids"] = r.ints(t, "input_ids"), r.ints(t, "attention_mask"), r.ints(t, "position_ids")
	in[passes.RoleInput] = r.ints(t, "role_ids")
	return in
}

// adapterFeeds holds PyTorch's fixed dual adapters.
func (r reference) adapterFeeds(t *testing.T, man *manifest.Manifest) map[string]*runtime.Tensor {
	t.Helper()
	in := map[string]*runtime.Tensor{}
	for _, name := range man.AdapterNames() {
		in[name] = r.f32(t, name)
	}
	return in
}

func compileExport(t *testing.T, exporter string) (string, *manifest.Manifest) {
	t.Helper()
	return compileFixture(t, filepath.Join(exportDir, exporter, "model.onnx"), compiler.Options{Rank: 4, Alpha: 8})
}

// emptyCache feeds an empty past for every layer.
func emptyCache(t *testing.T, man *manifest.Manifest, in map[string]*runtime.Tensor, batch int64) {
	for _, c := range man.Model.Cache {
		in[c.PastKey] = f32(t, []int64{batch, man.Model.KVHeads, 0, man.Model.HeadDim}, nil)
		in[c.PastValue] = f32(t, []int64{batch, man.Model.KVHeads, 0, man.Model.HeadDim}, nil)
	}
}

// lastOf returns x[:, s-1, :] of a row-major [b, s, v] slice.
func lastOf(x []float64, b, s, v int) []float64 {
	var out []float64
	for i := 0; i < b; i++ {
		out = append(out, x[(i*s+s-1)*v:(i*s+s)*v]...)
	}
	return out
}

func TestExportsCompileWithAllTargets(t *testing.T) {
	for _, ex := range exporters {
		t.Run(ex.name, func(t *testing.T) {
			_, man := compileExport(t, ex.name)
			if len(man.LoRA.Targets) != 14 {
				t.Fatalf("%d targets, want 7 per layer × 2", len(man.LoRA.Targets))
			}
			for _, tg := range man.LoRA.Targets {
				if strings.HasPrefix(tg.Node, "/model/") != (ex.evidence == "node-name") {
					t.Fatalf("%s matched at node %q", tg.Module, tg.Node)
				}
			}
			for _, g := range []string{"decode", "logprobs", "train", "adamw"} {
				if man.Graphs[g] == nil {
					t.Fatalf("no %s graph", g)
				}
			}
		})
	}
}

// TestExportParityBase: with B = 0, decode.onnx gives PyTorch's logits at
// the last position for the prefill and for one cached decode step.
func TestExportParityBase(t *testing.T) {
	orttest.Init(t)
	ref := loadReference(t)
	const b, s, v = 2, 7, 2003
	for _, ex := range exporters {
		t.Run(ex.name, func(t *testing.T) {
			out, man := compileExport(t, ex.name)
			dec := session(t, filepath.Join(out, "decode.onnx"))
			in := ref.batchFeeds(t, adapterFeeds(t, out)) // A random, B zero
			emptyCache(t, man, in, b)
			got := run(t, dec, in)
			d := relDiff(got["logits"].Floats(), lastOf(ref.floats(t, "prefill.logits"), b, s, v))
			t.Logf("prefill, last position: max|diff|/max|ref| = %.2g", d)
			if d > 1e-5 {
				t.Fatalf("prefill logits differ from PyTorch by %.3g relative", d)
			}
			next := adapterFeeds(t, out)
			next["input_ids"], next["attention_mask"], next["position_ids"] = ref.ints(t, "decode.input_ids"), ref.ints(t, "decode.attention_mask"), ref.ints(t, "decode.position_ids")
			next[passes.RoleInput] = i64(t, []int64{b, 1}, []int64{0, 1})
			for _, c := range man.Model.Cache {
				next[c.PastKey], next[c.PastValue] = got[c.PresentKey], got[c.PresentValue]
			}
			step := run(t, dec, next)
			d = relDiff(step["logits"].Floats(), ref.floats(t, "decode.logits"))
			t.Logf("cached decode step: max|diff|/max|ref| = %.2g", d)
			if d > 1e-5 {
				t.Fatalf("decode-step logits differ from PyTorch by %.3g relative", d)
			}
		})
	}
}

// TestExportParityDualLoRA: with PyTorch's fixed dual adapters and role
// ids, dartc's logits and log-probs equal those of the hooks that add the
// LoRA branches in PyTorch.
func TestExportParityDualLoRA(t *testing.T) {
	orttest.Init(t)
	ref := loadReference(t)
	const b, s, v = 2, 7, 2003
	for _, ex := range exporters {
		t.Run(ex.name, func(t *testing.T) {
			out, man := compileExport(t, ex.name)
			feeds := func() map[string]*runtime.Tensor { return ref.batchFeeds(t, ref.adapterFeeds(t, man)) }
			in := feeds()
			emptyCache(t, man, in, b)
			logits := run(t, session(t, filepath.Join(out, "decode.onnx")), in)["logits"].Floats()
			d := relDiff(logits, lastOf(ref.floats(t, "lora.logits"), b, s, v))
			t.Logf("logits with dual adapters, last position: %.2g", d)
			if d > 1e-5 {
				t.Fatalf("logits with adapters differ from PyTorch by %.3g relative", d)
			}
			lp := run(t, session(t, filepath.Join(out, "logprobs.onnx")), feeds())["logprobs"].Floats()
			var got []float64
			for r := 0; r < b; r++ {
				got = append(got, lp[r*s:r*s+s-1]...)
			}
			want := ref.floats(t, "lora.logprobs")
			// Compare where the input and the target are real tokens.
			mask := ref.get(t, "attention_mask")
			mv, _ := mask.Int64s()
			worst := 0.0
			for r := 0; r < b; r++ {
				for p := 0; p < s-1; p++ {
					if mv[r*s+p] == 1 {
						worst = math.Max(worst, math.Abs(got[r*(s-1)+p]-want[r*(s-1)+p])/math.Abs(want[r*(s-1)+p]))
					}
				}
			}
			t.Logf("log-probs with dual adapters: max relative diff %.2g", worst)
			if worst > 1e-5 {
				t.Fatalf("log-probs differ from PyTorch by %.3g relative", worst)
			}
		})
	}
}

// TestExportGradients: train.onnx's gradients of the GRPO loss equal torch
// autograd's (float64 reference) for every adapter tensor.
func TestExportGradients(t *testing.T) {
	orttest.Init(t)
	ref := loadReference(t)
	const b, s = 2, 7
	pad := func(name string) *runtime.Tensor {
		v := ref.floats(t, name) // [2, 6]
		out := make([]float32, b*s)
		for r := 0; r < b; r++ {
			for p := 0; p < s-1; p++ {
				out[r*s+p] = float32(v[r*(s-1)+p])
			}
		}
		return f32(t, []int64{b, s}, out)
	}
	for _, ex := range exporters {
		t.Run(ex.name, func(t *testing.T) {
			out, man := compileExport(t, ex.name)
			in := ref.batchFeeds(t, ref.adapterFeeds(t, man))
			in["token_weights"], in["advantages"] = pad("grpo.weights"), pad("grpo.advantages")
			in["old_logprobs"], in["ref_logprobs"] = pad("grpo.old_logprobs"), pad("grpo.ref_logprobs")
			in["clip_low"], in["clip_high"], in["kl_coef"] = f32(t, nil, []float32{0.2}), f32(t, nil, []float32{0.2}), f32(t, nil, []float32{0.1})
			in["entropy_coeff"] = f32(t, nil, []float32{0})
			got := run(t, session(t, filepath.Join(out, "train.onnx")), in)
			if d := math.Abs(got["loss"].Floats()[0]-ref.floats(t, "grpo.loss")[0]) / math.Abs(ref.floats(t, "grpo.loss")[0]); d > 1e-5 {
				t.Fatalf("loss %.8g, PyTorch %.8g", got["loss"].Floats()[0], ref.floats(t, "grpo.loss")[0])
			}
			worst, at := 0.0, ""
			for _, name := range man.AdapterNames() {
				d := relDiff(got[passes.GradPrefix+name].Floats(), ref.floats(t, "grad."+name))
				if d > worst {
					worst, at = d, name
				}
			}
			t.Logf("56 gradients vs torch autograd: worst max|diff|/max|ref| = %.2g (%s)", worst, at)
			if worst > 1e-4 {
				t.Fatalf("gradient of %s differs from autograd by %.3g relative", at, worst)
			}
		})
	}
}

// TestDynamoLinearsReadWeightsAsStored: the dynamo form's frozen linears,
// MatMul(x, Transpose(W)), are emitted as Gemm(x, W, transB=1), so that
// ONNX Runtime makes no transposed copy of the weights when it opens a
// graph that it pre-packs: every graph of the unoptimized dynamo export
// (the optimized one stores transposed copies, as TorchScript does) and of
// an untied synthesized model, in which no Transpose reads an initializer.
// With --share-embedding, logprobs.onnx and train.onnx run without
// pre-packing and keep the transposed copy's layout. The numerics are
// TestExportParity*, TestExportGradients and gradcheck's central
// differences.
func TestDynamoLinearsReadWeightsAsStored(t *testing.T) {
	check := func(t *testing.T, out string, man *manifest.Manifest, gname string, gemm bool) {
		t.Helper()
		m, err := ir.Load(filepath.Join(out, gname+".onnx"))
		if err != nil {
			t.Fatal(err)
		}
		nodes := map[string]*ir.Node{}
		for _, n := range m.Graph.Nodes {
			nodes[n.Name] = n
			if gemm && gname != "decode" && n.OpType == "Transpose" && m.Graph.Initializer(n.Inputs[0]) != nil {
				t.Errorf("%s: %s transposes the initializer %s", gname, n.Name, n.Inputs[0])
			}
		}
		for _, tg := range man.LoRA.Targets {
			if tg.Form != passes.FormMatMulTranspose {
				t.Fatalf("%s matched as %s, want the source's form %s", tg.Module, tg.Form, passes.FormMatMulTranspose)
			}
			n := nodes[tg.Node]
			isGemm := n != nil && n.OpType == "Gemm" && n.AttrInt("transB", 0) == 1 && m.Graph.Initializer(n.Inputs[1]) != nil
			if isGemm != gemm {
				t.Fatalf("%s: %s's node %s is %v; want Gemm(x, W, transB=1) with W an initializer: %v", gname, tg.Module, tg.Node, n, gemm)
			}
		}
	}
	t.Run("export", func(t *testing.T) {
		out, man := compileExport(t, "dynamo-noopt")
		for _, g := range []string{"decode", "logprobs", "train"} {
			check(t, out, man, g, true)
		}
	})
	t.Run("export-shared-embedding", func(t *testing.T) {
		out, man := compileFixture(t, filepath.Join(exportDir, "dynamo-noopt", "model.onnx"), compiler.Options{Rank: 4, Alpha: 8, ShareEmbedding: true})
		check(t, out, man, "decode", true)
		check(t, out, man, "logprobs", false)
		check(t, out, man, "train", false)
	})
	t.Run("synth-untied", func(t *testing.T) {
		cfg, err := qwen2.Preset("tiny")
		if err != nil {
			t.Fatal(err)
		}
		cfg.TiedEmbed = false
		res, err := synth.Synthesize(cfg, filepath.Join(t.TempDir(), "src"), synth.Options{LinearForm: synth.Dynamo, Seed: 2})
		if err != nil {
			t.Fatal(err)
		}
		out, man := compileFixture(t, res.ModelPath, compiler.Options{Rank: 2})
		for _, g := range []string{"decode", "logprobs", "train"} {
			check(t, out, man, g, true)
		}
	})
}
