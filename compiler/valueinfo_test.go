package compiler_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/runtime"
)

// TestValueInfoMatchesRun checks the value_info the compiler writes against
// what ONNX Runtime computes: every annotated intermediate becomes a graph
// output, the graph runs at two sequence lengths, and each value's element
// type and rank must match, each numeric dim equal its size, and each named
// dim stand for one size across all values of a run (ORT's allocation
// planner reuses buffers of equal named shapes, so a wrong name would be a
// wrong reuse).
func TestValueInfoMatchesRun(t *testing.T) {
	orttest.Init(t)
	for _, form := range []synth.LinearForm{synth.TorchScript, synth.Dynamo} {
		t.Run(form.String(), func(t *testing.T) {
			out, man := tinyCompiled(t, 0, synth.Options{Seed: 3, LinearForm: form})
			if o := man.Graphs[manifest.GraphAdamW].Optimization; o != manifest.OptimizationNone {
				t.Fatalf("adamw.onnx opens with ort_optimization %q, want %q", o, manifest.OptimizationNone)
			}
			for _, g := range []string{"decode", "logprobs", "train", "adamw"} {
				m, err := ir.Load(filepath.Join(out, g+".onnx"))
				if err != nil {
					t.Fatal(err)
				}
				if len(m.Graph.ValueInfo) < len(m.Graph.Nodes)/2 {
					t.Fatalf("%s.onnx: value_info for %d values of %d nodes", g, len(m.Graph.ValueInfo), len(m.Graph.Nodes))
				}
				annotated := map[string]*ir.Type{}
				for _, v := range m.Graph.ValueInfo {
					annotated[v.Name] = v.Type
					m.Graph.Outputs = append(m.Graph.Outputs, v)
				}
				probe := filepath.Join(out, g+"-probe.onnx")
				if err := ir.Save(m, probe, ir.EmitOptions{}); err != nil {
					t.Fatal(err)
				}
				s := session(t, probe)
				rng := rand.New(rand.NewPCG(7, 8))
				for _, seq := range []int{5, 9} {
					var in map[string]*runtime.Tensor
					if g == "adamw" {
						in = adamwFeeds(t, s)
					} else {
						bt := newBatch(rng, man.Model.Vocab, seq, func(i int) int64 { return int64(i/3) % 2 })
						in = bt.feeds(t)
						if g == "train" {
							bt.lossFeeds(t, rng, in)
						}
						for k, v := range randomAdapters(t, man, rng, man.LoRA.Roles...) {
							in[k] = v
						}
					}
					got := run(t, s, in)
					sizes := map[string]int64{}
					for name, ty := range annotated {
						if err := checkValue(name, ty, got[name], sizes); err != nil {
							t.Fatalf("%s.onnx at %d tokens: %v", g, seq, err)
						}
					}
				}
			}
		})
	}
}

func checkValue(name string, ty *ir.Type, v *runtime.Tensor, sizes map[string]int64) error {
	if v == nil {
		return fmt.Errorf("%s: not computed", name)
	}
	if v.DType().String() != ty.DType.String() {
		return fmt.Errorf("%s: annotated %s, computed %s", name, ty.DType, v.DType())
	}
	shape := v.Shape()
	if len(shape) != len(ty.Dims) {
		return fmt.Errorf("%s: annotated %s, computed shape %v", name, ty, shape)
	}
	for i, d := range ty.Dims {
		if d.Param == "" && d.Value < 0 {
			continue // annotated as unknown: any size
		}
		if d.Param == "" {
			if d.Value != shape[i] {
				return fmt.Errorf("%s: annotated %s, computed shape %v", name, ty, shape)
			}
			continue
		}
		if n, seen := sizes[d.Param]; seen && n != shape[i] {
			return fmt.Errorf("%s: dim %d is %q = %d, but another value's %q is %d", name, i, d.Param, shape[i], d.Param, n)
		}
		sizes[d.Param] = shape[i]
	}
	return nil
}

// adamwFeeds fills every input of adamw.onnx: random parameters, gradients
// and moments (the second moment positive), step scalars of a first step.
func adamwFeeds(t testing.TB, s *runtime.Session) map[string]*runtime.Tensor {
	rng := rand.New(rand.NewPCG(9, 10))
	in := map[string]*runtime.Tensor{}
	for _, io := range s.Inputs() {
		n := int64(1)
		for _, d := range io.Dims {
			n *= d
		}
		v := make([]float32, n)
		for i := range v {
			v[i] = float32(rng.Float64())
		}
		if len(io.Dims) == 0 {
			v[0] = 1
		}
		in[io.Name] = f32(t, io.Dims, v)
	}
	return in
}
