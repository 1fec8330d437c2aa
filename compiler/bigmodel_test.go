package compiler_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
)

// TestBigPresetReadsNoWeights compiles the qwen2.5-3b preset (36 layers,
// 12.7 GB of weights in a sparse external data file) into every graph and
// checks that no weight byte was read.
func TestBigPresetReadsNoWeights(t *testing.T) {
	cfg, err := qwen2.Preset("qwen2.5-3b")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res, err := synth.Synthesize(cfg, filepath.Join(dir, "src"), synth.Options{KVCache: true, Weights: synth.WeightsZero, Storage: synth.StorageExternal})
	if err != nil {
		t.Fatal(err)
	}
	before := ir.ExternalReads()
	man, err := compiler.Compile(res.ModelPath, filepath.Join(dir, "out"), compiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := ir.ExternalReads() - before; n != 0 {
		t.Fatalf("compiling read external weight data %d times", n)
	}
	if len(man.LoRA.Targets) != 7*36 || len(man.Model.Cache) != 36 || man.Model.Vocab != 151936 {
		t.Fatalf("manifest: %d targets, %d cache layers, vocab %d", len(man.LoRA.Targets), len(man.Model.Cache), man.Model.Vocab)
	}
	for _, g := range []string{"decode", "logprobs", "train", "adamw"} {
		if man.Graphs[g] == nil {
			t.Fatalf("no %s graph", g)
		}
	}
}

// BenchmarkCompile compiles each Qwen2.5 preset with zero weights in
// sparse external data; the time should not grow with the weights' size.
func BenchmarkCompile(b *testing.B) {
	for _, preset := range []string{"qwen2.5-0.5b", "qwen2.5-3b", "qwen2.5-7b"} {
		b.Run(preset, func(b *testing.B) {
			cfg, err := qwen2.Preset(preset)
			if err != nil {
				b.Fatal(err)
			}
			dir := b.TempDir()
			res, err := synth.Synthesize(cfg, filepath.Join(dir, "src"), synth.Options{KVCache: true, Weights: synth.WeightsZero, Storage: synth.StorageExternal})
			if err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := compiler.Compile(res.ModelPath, filepath.Join(dir, "out"), compiler.Options{Force: true}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestLeanBackward compiles the qwen2.5-0.5b preset in each linear form,
// and the real TorchScript and dynamo exports of the tiny Qwen2.5, and
// checks the size of the backward graph: train.onnx has at most 4 times the
// nodes of logprobs.onnx (the same forward without the loss and gradient),
// no run-time broadcast undoing (NonZero) and no Einsum. The exports made
// without the exporters' optimizations (constant folding, the dynamo
// optimizer) are checked too.
func TestLeanBackward(t *testing.T) {
	cfg, err := qwen2.Preset("qwen2.5-0.5b")
	if err != nil {
		t.Fatal(err)
	}
	srcs := map[string]string{
		"export/torchscript":        "../models/export/testdata/tiny-qwen2.5/torchscript/model.onnx",
		"export/dynamo":             "../models/export/testdata/tiny-qwen2.5/dynamo/model.onnx",
		"export/torchscript-nofold": "../models/export/testdata/tiny-qwen2.5/torchscript-nofold/model.onnx",
		"export/dynamo-noopt":       "../models/export/testdata/tiny-qwen2.5/dynamo-noopt/model.onnx",
	}
	for _, form := range []synth.LinearForm{synth.TorchScript, synth.Dynamo, synth.Gemm} {
		res, err := synth.Synthesize(cfg, filepath.Join(t.TempDir(), "src"), synth.Options{LinearForm: form, Weights: synth.WeightsZero, Storage: synth.StorageExternal})
		if err != nil {
			t.Fatal(err)
		}
		srcs["qwen2.5-0.5b/"+form.String()] = res.ModelPath
	}
	for name, src := range srcs {
		out := filepath.Join(t.TempDir(), "out")
		if _, err := compiler.Compile(src, out, compiler.Options{}); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		count := map[string]map[string]int{}
		total := map[string]int{}
		for _, g := range []string{"logprobs", "train"} {
			m, err := ir.Load(filepath.Join(out, g+".onnx"))
			if err != nil {
				t.Fatal(err)
			}
			count[g] = map[string]int{}
			for _, n := range m.Graph.Nodes {
				if n.OpType == "NonZero" && !strings.Contains(n.Name, "/unbroadcast/") {
					continue // the loss head's selection of positions, not a broadcast
				}
				count[g][n.OpType]++
			}
			total[g] = len(m.Graph.Nodes)
		}
		ratio := float64(total["train"]) / float64(total["logprobs"])
		t.Logf("%s: train %d nodes, logprobs %d: %.2f×", name, total["train"], total["logprobs"], ratio)
		if ratio > 4 {
			t.Errorf("%s: train.onnx has %d nodes, %.2f× logprobs.onnx's %d; want ≤ 4×", name, total["train"], ratio, total["logprobs"])
		}
		for _, op := range []string{"NonZero", "Einsum"} {
			// The dynamo export without its optimizer builds the causal mask
			// from Range sizes the shape inference does not follow: its
			// attention keeps a run-time broadcast check.
			if op == "NonZero" && name == "export/dynamo-noopt" {
				continue
			}
			if c := count["train"][op]; c > 0 {
				t.Errorf("%s: train.onnx has %d %s nodes", name, c, op)
			}
		}
	}
}
