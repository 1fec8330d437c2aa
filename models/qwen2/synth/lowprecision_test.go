package synth_test

import (
	"math"
	"testing"

	"github.com/dartc/dartc/internal/float16"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/models/qwen2/qwen2ref"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/runtime"
)

// TestLowPrecisionSynth: --dtype float16 and bfloat16 write every weight,
// constant and float input/output in the low type, each weight the float32
// model's (same seed) rounded to nearest even; the float16 model runs on
// ONNX Runtime's CPU provider (which casts around its float32 kernels) and
// matches the float64 reference on the rounded weights within float16's
// precision.
func TestLowPrecisionSynth(t *testing.T) {
	orttest.Init(t)
	cfg := tinyConfig(t)
	f32, err := synth.Synthesize(cfg, t.TempDir()+"/m", synth.Options{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	m32, err := ir.Load(f32.ModelPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		dt   synth.DType
		want ir.DType
		conv func(float32) float32
	}{
		{synth.Float16, ir.Float16, func(x float32) float32 { return float16.ToFloat32(float16.FromFloat32(x)) }},
		{synth.BFloat16, ir.BFloat16, func(x float32) float32 { return float16.BFloat16ToFloat32(float16.BFloat16FromFloat32(x)) }},
	} {
		opts := synth.Options{Seed: 7, DType: c.dt, Storage: synth.StorageExternal}
		res, err := synth.Synthesize(cfg, t.TempDir()+"/m", opts)
		if err != nil {
			t.Fatal(err)
		}
		m, err := ir.Load(res.ModelPath)
		if err != nil {
			t.Fatal(err)
		}
		if err := ir.CheckModel(m); err != nil {
			t.Fatal(err)
		}
		checked := 0
		for _, w := range m.Graph.Initializers {
			if w.DType == ir.Int64 {
				continue
			}
			if w.DType != c.want {
				t.Fatalf("%s: initializer %s is %s", c.dt, w.Name, w.DType)
			}
			src := m32.Graph.Initializer(w.Name)
			if src == nil {
				continue
			}
			got, _ := w.Float64s()
			want, _ := src.Float64s()
			for i := range want {
				if r := float64(c.conv(float32(want[i]))); got[i] != r {
					t.Fatalf("%s: %s[%d] = %g, want %g (float32 %g rounded)", c.dt, w.Name, i, got[i], r, want[i])
				}
			}
			checked++
		}
		for _, v := range append(m.Graph.Inputs, m.Graph.Outputs...) {
			if v.Type.DType.IsFloat() && v.Type.DType != c.want {
				t.Errorf("%s: %s is %s", c.dt, v.Name, v.Type.DType)
			}
		}
		t.Logf("%s: %d weights equal the float32 model's rounded to %s", c.dt, checked, c.dt)
		if c.dt != synth.Float16 {
			continue
		}
		ref, err := qwen2ref.New(cfg, res.Weights)
		if err != nil {
			t.Fatal(err)
		}
		ref.MaskValue = -65504
		prefill, _ := leftPadded(cfg.Vocab, 0)
		want, _, err := ref.Forward(prefill.ids, prefill.mask, prefill.pos, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := runtime.NewSession(res.ModelPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Destroy()
		in := map[string]*runtime.Tensor{}
		for name, rows := range map[string][][]int64{"input_ids": prefill.ids, "attention_mask": prefill.mask, "position_ids": prefill.pos} {
			var flat []int64
			for _, r := range rows {
				flat = append(flat, r...)
			}
			if in[name], err = runtime.FromInt64([]int64{int64(len(rows)), int64(len(rows[0]))}, flat); err != nil {
				t.Fatal(err)
			}
		}
		out, err := s.Run(in)
		if err != nil {
			t.Fatal(err)
		}
		got := out["logits"].Floats()
		// Compare the non-padded positions (padded query rows are fully masked).
		d, scale := 0.0, 0.0
		for b := range prefill.mask {
			for p, mk := range prefill.mask[b] {
				if mk == 0 {
					continue
				}
				for v := 0; v < cfg.Vocab; v++ {
					i := (b*len(prefill.mask[b])+p)*cfg.Vocab + v
					d, scale = math.Max(d, math.Abs(got[i]-want[i])), math.Max(scale, math.Abs(want[i]))
				}
			}
		}
		t.Logf("float16 model on ORT CPU vs float64 reference: max|diff| %.3g, max|ref| %.3g (%.2g relative)", d, scale, d/scale)
		if d/scale > 2e-2 {
			t.Errorf("float16 logits differ from the reference by %.3g relative (tolerance 2e-2)", d/scale)
		}
	}
}
