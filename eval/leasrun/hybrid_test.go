package leasrun_test

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/eval/leas"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/peft"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/safetensors"
)

const exportDir = "../../models/export/testdata/tiny-qwen2.5"

// singleAdapter returns a trained single-adapter model in the dual layout:
// the reference file's tensors of role from, copied into both slots (a
// single adapter applies to every token).
func singleAdapter(t *testing.T, ref *safetensors.File, man *manifest.Manifest, from string) *safetensors.File {
	t.Helper()
	f := &safetensors.File{Metadata: map[string]string{}}
	for _, tg := range man.LoRA.Targets {
		for _, role := range man.LoRA.Roles {
			for _, name := range []string{tg.A[role], tg.B[role]} {
				n, _ := peft.ParseAdapterName(name)
				n.Role = from
				src, err := ref.Get(n.String())
				if err != nil {
					t.Fatal(err)
				}
				src.Name = name
				f.Tensors = append(f.Tensors, src)
			}
		}
	}
	return f
}

// sourceWeight returns the target's weight as [in, out] float64, read from
// the exported model: a MatMul initializer [in, out] or the input of a
// Transpose of an [out, in] initializer.
func sourceWeight(t *testing.T, g *ir.Graph, tg manifest.Target) (x, y string, w []float64) {
	t.Helper()
	for _, n := range g.Nodes {
		if n.Name != tg.Node {
			continue
		}
		x, y = n.Inputs[0], n.Outputs[0]
		if init := g.Initializer(n.Inputs[1]); init != nil {
			v, err := init.Float64s()
			if err != nil {
				t.Fatal(err)
			}
			return x, y, v
		}
		for _, p := range g.Nodes {
			if p.OpType == "Transpose" && p.Outputs[0] == n.Inputs[1] {
				v, err := g.Initializer(p.Inputs[0]).Float64s() // [out, in]
				if err != nil {
					t.Fatal(err)
				}
				w = make([]float64, len(v))
				for o := int64(0); o < tg.Out; o++ {
					for i := int64(0); i < tg.In; i++ {
						w[i*tg.Out+o] = v[o*tg.In+i]
					}
				}
				return x, y, w
			}
		}
	}
	t.Fatalf("no MatMul %q with a weight in the source graph", tg.Node)
	return
}

func floats(t *testing.T, st safetensors.Tensor) []float64 {
	t.Helper()
	v, err := st.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, len(v))
	for i, f := range v {
		out[i] = float64(f)
	}
	return out
}

func refTensor(t *testing.T, ref *safetensors.File, name string) *runtime.Tensor {
	t.Helper()
	st, err := ref.Get(name)
	if err != nil {
		t.Fatal(err)
	}
	v, err := st.Int64s()
	if err != nil {
		t.Fatal(err)
	}
	x, err := runtime.FromInt64(st.Shape, v)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestHybridSlots (issue 8, must-show 2): on the compiled tiny Qwen2.5 of
// the TorchScript export, the adapter tensors leas.Assemble builds for
// H_Reas make every one of the 14 target linears compute
// x·W + s·(x·A·B) with M_Reas's adapter at reasoning positions and exactly
// x·W at tool positions; H_Tool the other way round with M_Tool's adapter.
// The expected values come from the exported weights with float64 loops.
func TestHybridSlots(t *testing.T) {
	orttest.Init(t)
	out := filepath.Join(t.TempDir(), "out")
	src := filepath.Join(exportDir, "torchscript", "model.onnx")
	man, err := compiler.Compile(src, out, compiler.Options{Rank: 4, Alpha: 8, Graphs: []string{manifest.GraphDecode}})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := safetensors.Read(filepath.Join(exportDir, "reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	// M_Reas and M_Tool: different trained adapters (the reference's reason
	// and tool tensors), each a single adapter in both slots.
	trained := map[leas.Config]*safetensors.File{
		leas.Reas: singleAdapter(t, ref, man, "reason"),
		leas.Tool: singleAdapter(t, ref, man, "tool"),
	}

	srcModel, err := ir.Load(src)
	if err != nil {
		t.Fatal(err)
	}
	type probeTarget struct {
		tg   manifest.Target
		x, y string
		w    []float64
	}
	var targets []probeTarget
	var extra []string
	for _, tg := range man.LoRA.Targets {
		x, y, w := sourceWeight(t, srcModel.Graph, tg)
		targets = append(targets, probeTarget{tg, x, y, w})
		extra = append(extra, x, y)
	}
	if len(targets) != 14 {
		t.Fatalf("%d targets compiled, want 14", len(targets))
	}
	sess := probeSession(t, out, extra)

	for _, tc := range []struct {
		cfg     leas.Config
		trained leas.Config // whose adapter the active slot holds
		active  int64       // the role whose positions get the adapter
	}{
		{leas.HReas, leas.Reas, 0},
		{leas.HTool, leas.Tool, 1},
	} {
		t.Run(tc.cfg.String(), func(t *testing.T) {
			tensors, err := leas.Assemble(tc.cfg, trained)
			if err != nil {
				t.Fatal(err)
			}
			in := map[string]*runtime.Tensor{}
			adapters := map[string][]float64{}
			for _, st := range tensors {
				v := floats(t, st)
				adapters[st.Name] = v
				f32 := make([]float32, len(v))
				for i := range v {
					f32[i] = float32(v[i])
				}
				if in[st.Name], err = runtime.FromFloat32(st.Shape, f32); err != nil {
					t.Fatal(err)
				}
			}
			for _, name := range []string{"input_ids", "attention_mask", "position_ids", "role_ids"} {
				in[name] = refTensor(t, ref, name)
			}
			roles := in["role_ids"].Int64()
			for _, c := range man.Model.Cache {
				in[c.PastKey] = runtime.NewTensor(runtime.Float32, 2, man.Model.KVHeads, 0, man.Model.HeadDim)
				in[c.PastValue] = runtime.NewTensor(runtime.Float32, 2, man.Model.KVHeads, 0, man.Model.HeadDim)
			}
			runtime.AddGreedySamplerFeeds(sess, in)
			got, err := sess.Run(in)
			if err != nil {
				t.Fatal(err)
			}
			activeRole := man.LoRA.Roles[tc.active]
			wantAdapter := trained[tc.trained]
			worstOn, worstOff, loraSize := 0.0, 0.0, 0.0
			onRows, offRows := 0, 0
			for _, p := range targets {
				a, b := adapters[p.tg.A[activeRole]], adapters[p.tg.B[activeRole]]
				// The slot holds the trained model's own tensor, bit for bit.
				wantA, _ := wantAdapter.Get(p.tg.A[activeRole])
				if fmt.Sprint(floats(t, wantA)) != fmt.Sprint(a) {
					t.Fatalf("%s: active slot of %s is not %v's adapter", tc.cfg, p.tg.Module, tc.trained)
				}
				x, y := got[p.x].Floats(), got[p.y].Floats()
				nIn, nOut, r := int(p.tg.In), int(p.tg.Out), man.LoRA.Rank
				for row := range len(roles) {
					xr := x[row*nIn : (row+1)*nIn]
					on := roles[row] == tc.active
					if on {
						onRows++
					} else {
						offRows++
					}
					for o := range nOut {
						base := 0.0
						for i := range nIn {
							base += xr[i] * p.w[i*nOut+o]
						}
						lora := 0.0
						for j := range r {
							xa := 0.0
							for i := range nIn {
								xa += xr[i] * a[i*r+j]
							}
							lora += xa * b[j*nOut+o]
						}
						want := base
						if on {
							want += man.LoRA.Scale * lora
							worstOn = math.Max(worstOn, math.Abs(y[row*nOut+o]-want))
						} else {
							worstOff = math.Max(worstOff, math.Abs(y[row*nOut+o]-want))
						}
						loraSize = math.Max(loraSize, math.Abs(man.LoRA.Scale*lora))
					}
				}
			}
			t.Logf("%s: max |y − (x·W + s·x·A·B)| = %.2g on %d active rows; max |y − x·W| = %.2g on %d other rows; largest LoRA term %.2g",
				tc.cfg, worstOn, onRows, worstOff, offRows, loraSize)
			if onRows == 0 || offRows == 0 {
				t.Fatal("the role ids do not mix both roles")
			}
			// The LoRA term is large enough that applying it on the wrong
			// rows (or dropping it) could not pass the 1e-5 bound.
			if loraSize < 1e-2 {
				t.Fatalf("largest LoRA term %.2g is too small to tell slots apart", loraSize)
			}
			if worstOn > 1e-5 || worstOff > 1e-5 {
				t.Fatalf("%s: rewritten linears differ from the slot formula: %.3g (active rows), %.3g (other rows)", tc.cfg, worstOn, worstOff)
			}
		})
	}
}

// probeSession opens decode.onnx with extra graph outputs.
func probeSession(t *testing.T, dir string, extra []string) *runtime.Session {
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
	s, err := runtime.NewSession(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Destroy() })
	return s
}
