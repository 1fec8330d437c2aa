package compiler_test

import (
	"path/filepath"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/passes"
	"github.com/dartc/dartc/runtime"
)

// TestSynthesizedZeroAdapters: on the synthesized tiny Qwen2 with a KV
// cache, in each exporter form, decode.onnx with B = 0 gives the source's
// last-position logits and the same caches, for a left-padded prefill and a
// cached step; each form's linears are matched as that form.
func TestSynthesizedZeroAdapters(t *testing.T) {
	orttest.Init(t)
	cfg, err := qwen2.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	forms := map[synth.LinearForm]string{synth.TorchScript: passes.FormMatMul, synth.Dynamo: passes.FormMatMulTranspose, synth.Gemm: passes.FormGemm}
	for form, want := range forms {
		t.Run(form.String(), func(t *testing.T) {
			dir := t.TempDir()
			res, err := synth.Synthesize(cfg, filepath.Join(dir, "src"), synth.Options{KVCache: true, LinearForm: form, Seed: 11})
			if err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "out")
			man, err := compiler.Compile(res.ModelPath, out, compiler.Options{Rank: 4, Graphs: decodeOnly, Check: true})
			if err != nil {
				t.Fatal(err)
			}
			if len(man.LoRA.Targets) != 14 {
				t.Fatalf("%d targets", len(man.LoRA.Targets))
			}
			for _, tg := range man.LoRA.Targets {
				if tg.Form != want {
					t.Fatalf("%s matched as %s, want %s", tg.Module, tg.Form, want)
				}
			}
			src := session(t, res.ModelPath)
			dec := session(t, filepath.Join(out, "decode.onnx"))
			sh := []int64{2, 5}
			in := map[string]*runtime.Tensor{
				"input_ids":      i64(t, sh, []int64{7, 99, 1500, 3, 42, 0, 0, 12, 640, 2000}),
				"attention_mask": i64(t, sh, []int64{1, 1, 1, 1, 1, 0, 0, 1, 1, 1}),
				"position_ids":   i64(t, sh, []int64{0, 1, 2, 3, 4, 1, 1, 0, 1, 2}),
			}
			for _, c := range man.Model.Cache {
				in[c.PastKey] = f32(t, []int64{2, man.Model.KVHeads, 0, man.Model.HeadDim}, nil)
				in[c.PastValue] = f32(t, []int64{2, man.Model.KVHeads, 0, man.Model.HeadDim}, nil)
			}
			for step := 0; step < 2; step++ {
				want := run(t, src, in)
				withLoRA := map[string]*runtime.Tensor{passes.RoleInput: i64(t, in["input_ids"].Shape(), make([]int64, in["input_ids"].Len()))}
				for k, v := range in {
					withLoRA[k] = v
				}
				for k, v := range adapterFeeds(t, out) {
					withLoRA[k] = v
				}
				got := run(t, dec, withLoRA)
				if d := maxAbsDiff(got["logits"].Floats(), lastPosition(want["logits"])); d > 1e-6 {
					t.Fatalf("step %d: logits differ by %.3g > 1e-6", step, d)
				}
				for _, c := range man.Model.Cache {
					if d := maxAbsDiff(got[c.PresentKey].Floats(), want[c.PresentKey].Floats()); d > 1e-6 {
						t.Fatalf("step %d: %s differs by %.3g", step, c.PresentKey, d)
					}
				}
				// The next step: one token per row on the source's cache; row 1
				// keeps its two leading pads.
				total := 6 + step
				mask := make([]int64, 2*total)
				for i := range mask {
					if i >= total+2 || i < total {
						mask[i] = 1
					}
				}
				next := map[string]*runtime.Tensor{
					"input_ids":      i64(t, []int64{2, 1}, []int64{5, 6}),
					"attention_mask": i64(t, []int64{2, int64(total)}, mask),
					"position_ids":   i64(t, []int64{2, 1}, []int64{int64(5 + step), int64(3 + step)}),
				}
				for _, c := range man.Model.Cache {
					next[c.PastKey], next[c.PastValue] = want[c.PresentKey], want[c.PresentValue]
				}
				in = next
			}
		})
	}
}
