package compiler_test

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
)

// TestMergedLoRAInputs: train.onnx of the tiny preset computes the A side
// of the LoRA branches once per activation — one x·A product for q/k/v and
// one for gate/up in every layer, o and down alone — and gives the loss,
// every adapter gradient and (logprobs.onnx) every log-prob that the same
// model compiled without the merge gives, with both roles mixed within
// rows and a left-padded row. The three linear forms (the Gemm form
// flattens x once per linear).
func TestMergedLoRAInputs(t *testing.T) {
	orttest.Init(t)
	cfg, err := qwen2.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range []synth.LinearForm{synth.TorchScript, synth.Dynamo, synth.Gemm} {
		t.Run(form.String(), func(t *testing.T) {
			dir := t.TempDir()
			res, err := synth.Synthesize(cfg, filepath.Join(dir, "src"), synth.Options{Seed: 5, LinearForm: form})
			if err != nil {
				t.Fatal(err)
			}
			opts := compiler.Options{Rank: 4, Alpha: 8, Check: true, Graphs: []string{"decode", "logprobs", "train"}}
			restore := compiler.WithoutPass("merge-lora-inputs")
			separate := filepath.Join(dir, "separate")
			_, err = compiler.Compile(res.ModelPath, separate, opts)
			restore()
			if err != nil {
				t.Fatal(err)
			}
			merged := filepath.Join(dir, "merged")
			man, err := compiler.Compile(res.ModelPath, merged, opts)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]int{"q,k,v": cfg.Layers, "o": cfg.Layers, "gate,up": cfg.Layers, "down": cfg.Layers}
			for _, graph := range []string{"logprobs", "train"} {
				if got := aProducts(t, filepath.Join(merged, graph+".onnx"), true); !mapsEqual(got, want) {
					t.Fatalf("merged %s.onnx: A-side products by targets %v, want %v", graph, got, want)
				}
			}
			sep := map[string]int{}
			for _, k := range []string{"q", "k", "v", "o", "gate", "up", "down"} {
				sep[k] = cfg.Layers
			}
			if got := aProducts(t, filepath.Join(separate, "train.onnx"), false); !mapsEqual(got, sep) {
				t.Fatalf("train.onnx without the merge: A-side products by targets %v, want %v", got, sep)
			}

			compareCompiles(t, man, separate, merged, compileComparison{ref: "separate", got: "merged", seqs: []int{7, 16}, seed: 5, nonzero: true})
		})
	}
}

// aProducts counts the A-side products of the LoRA branches, MatMul(x,
// Concat(A adapters)), by the target kinds whose adapters the Concat
// joins ("q,k,v": one product for the three); with distinct set it fails
// when two of them read the same x.
func aProducts(t *testing.T, path string, distinct bool) map[string]int {
	t.Helper()
	m, err := ir.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	prod := map[string]*ir.Node{}
	for _, n := range m.Graph.Nodes {
		for _, o := range n.Outputs {
			prod[o] = n
		}
	}
	count, readers := map[string]int{}, map[string]int{}
	for _, n := range m.Graph.Nodes {
		if n.OpType != "MatMul" {
			continue
		}
		c := prod[n.Input(1)]
		if c == nil || c.OpType != "Concat" || !strings.Contains(c.Input(0), ".lora_A.") {
			continue
		}
		var kinds []string
		for _, a := range c.Inputs {
			kind := strings.TrimSuffix(a[strings.LastIndex(a[:strings.Index(a, ".lora_A.")], ".")+1:strings.Index(a, ".lora_A.")], "_proj")
			if !slices.Contains(kinds, kind) {
				kinds = append(kinds, kind)
			}
		}
		count[strings.Join(kinds, ",")]++
		if readers[n.Input(0)]++; distinct && readers[n.Input(0)] > 1 {
			t.Fatalf("%s: two A-side products read %s", path, n.Input(0))
		}
	}
	return count
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
