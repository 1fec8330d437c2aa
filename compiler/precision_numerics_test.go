package compiler_test

import (
	"math"
	"path/filepath"
	"testing"

	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/passes"
	"github.com/dartc/dartc/passes/kernels"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/safetensors"
)

// TestPrecisionDecodeLogprobs: the CUDA-targeted fp16 and bf16 graphs,
// run on the CPU through their rounding emulation, against the float32
// graphs on the exported fixtures with PyTorch's dual adapters: prefill
// logits, a cached decode step, log-probs.
func TestPrecisionDecodeLogprobs(t *testing.T) {
	orttest.Init(t)
	ref := loadReference(t)
	const b, s = 2, 7
	mask, _ := ref.get(t, "attention_mask").Int64s()
	for _, ex := range []string{"torchscript", "dynamo"} {
		f32Dir, man := compileExport(t, ex)
		feeds := func() map[string]*runtime.Tensor { return ref.batchFeeds(t, ref.adapterFeeds(t, man)) }
		decode := func(path string) (pre, step map[string]*runtime.Tensor) {
			dec := session(t, path)
			in := feeds()
			emptyCache(t, man, in, b)
			pre = run(t, dec, in)
			next := ref.adapterFeeds(t, man)
			next["input_ids"], next["attention_mask"], next["position_ids"] = ref.ints(t, "decode.input_ids"), ref.ints(t, "decode.attention_mask"), ref.ints(t, "decode.position_ids")
			next[passes.RoleInput] = i64(t, []int64{b, 1}, []int64{0, 1})
			for _, c := range man.Model.Cache {
				next[c.PastKey], next[c.PastValue] = pre[c.PresentKey], pre[c.PresentValue]
			}
			return pre, run(t, dec, next)
		}
		logprobs := func(path string) []float64 {
			lp := run(t, session(t, path), feeds())["logprobs"].Floats()
			var out []float64
			for r := 0; r < b; r++ {
				for p := 0; p < s-1; p++ {
					if mask[r*s+p] == 1 {
						out = append(out, lp[r*s+p])
					}
				}
			}
			return out
		}
		wantPre, wantStep := decode(filepath.Join(f32Dir, "decode.onnx"))
		wantLP := logprobs(filepath.Join(f32Dir, "logprobs.onnx"))
		for _, c := range []struct {
			prec          string
			logits, lpAbs float64
		}{{"fp16", 1e-2, 2e-2}, {"bf16", 5e-2, 0.15}} {
			dir := compilePrecision(t, ex, c.prec, kernels.CUDA)
			pre, step := decode(emulate(t, filepath.Join(dir, "decode.onnx")))
			lp := logprobs(emulate(t, filepath.Join(dir, "logprobs.onnx")))
			dPre := relDiff(pre["logits"].Floats(), wantPre["logits"].Floats())
			dStep := relDiff(step["logits"].Floats(), wantStep["logits"].Floats())
			dLP := maxAbsDiff(lp, wantLP)
			t.Logf("%s %s vs float32: prefill logits %.2g, cached step %.2g (max|diff|/max|ref|); log-probs max |diff| %.2g nats",
				ex, c.prec, dPre, dStep, dLP)
			if dPre == 0 || dLP == 0 {
				t.Errorf("%s %s: identical to float32: the emulation did not round", ex, c.prec)
			}
			if dPre > c.logits || dStep > c.logits || dLP > c.lpAbs || math.IsNaN(dPre+dStep+dLP) {
				t.Errorf("%s %s: beyond tolerance (logits %.1g relative, log-probs %.1g nats)", ex, c.prec, c.logits, c.lpAbs)
			}
			if c.prec == "fp16" {
				// ONNX Runtime's CPU provider also runs the CUDA-targeted
				// float16 graph itself, placing its own Casts around its
				// float32 kernels: a second arithmetic, not the emulation.
				pre, step = decode(filepath.Join(dir, "decode.onnx"))
				lp = logprobs(filepath.Join(dir, "logprobs.onnx"))
				dPre = relDiff(pre["logits"].Floats(), wantPre["logits"].Floats())
				dStep = relDiff(step["logits"].Floats(), wantStep["logits"].Floats())
				dLP = maxAbsDiff(lp, wantLP)
				t.Logf("%s fp16 graph on ORT's CPU float16 support: prefill logits %.2g, cached step %.2g; log-probs %.2g nats", ex, dPre, dStep, dLP)
				if dPre > c.logits || dStep > c.logits || dLP > c.lpAbs || math.IsNaN(dPre+dStep+dLP) {
					t.Errorf("%s fp16 on ORT's CPU float16 support: beyond tolerance", ex)
				}
			}
			// Compiled for the CPU provider: runs on ONNX Runtime's CPU
			// kernels as it is (low type only where the CPU has kernels).
			cpu := compilePrecision(t, ex, c.prec, kernels.CPU)
			pre, step = decode(filepath.Join(cpu, "decode.onnx"))
			lp = logprobs(filepath.Join(cpu, "logprobs.onnx"))
			dPre = relDiff(pre["logits"].Floats(), wantPre["logits"].Floats())
			dStep = relDiff(step["logits"].Floats(), wantStep["logits"].Floats())
			dLP = maxAbsDiff(lp, wantLP)
			t.Logf("%s %s --provider cpu, run on the CPU as compiled: prefill logits %.2g, cached step %.2g; log-probs %.2g nats", ex, c.prec, dPre, dStep, dLP)
			if dPre > c.logits || dStep > c.logits || dLP > c.lpAbs || math.IsNaN(dPre+dStep+dLP) {
				t.Errorf("%s %s --provider cpu: beyond tolerance", ex, c.prec)
			}
		}
	}
}

// TestPrecisionTrainGradients: train.onnx compiled --precision fp16 and
// bf16 (adapters float32), run on the CPU through its rounding emulation,
// gives the GRPO loss's adapter gradients of PyTorch autocast on the same
// model (models/export/make_autocast_reference.py: low-precision backbone,
// float32 adapters, autocast matmuls), within a tolerance of the order of
// the low type's error; both are compared with float64 autograd too.
func TestPrecisionTrainGradients(t *testing.T) {
	orttest.Init(t)
	ref := loadReference(t)
	ac, err := safetensors.Read(filepath.Join(exportDir, "autocast-reference.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	acFloats := func(name string) []float64 {
		x, err := ac.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := x.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float64, len(f))
		for i, v := range f {
			out[i] = float64(v)
		}
		return out
	}
	const b, s = 2, 7
	pad := func(name string) *runtime.Tensor {
		v := ref.floats(t, name)
		out := make([]float32, b*s)
		for r := 0; r < b; r++ {
			for p := 0; p < s-1; p++ {
				out[r*s+p] = float32(v[r*(s-1)+p])
			}
		}
		return f32(t, []int64{b, s}, out)
	}
	for _, ex := range []string{"torchscript", "dynamo"} {
		_, man := compileExport(t, ex)
		for _, c := range []struct {
			prec, name string
			tol        float64
		}{{"fp16", "float16", 2e-2}, {"bf16", "bfloat16", 0.15}} {
			dir := compilePrecision(t, ex, c.prec, kernels.CUDA)
			in := ref.batchFeeds(t, ref.adapterFeeds(t, man))
			in["token_weights"], in["advantages"] = pad("grpo.weights"), pad("grpo.advantages")
			in["old_logprobs"], in["ref_logprobs"] = pad("grpo.old_logprobs"), pad("grpo.ref_logprobs")
			in["clip_low"], in["clip_high"], in["kl_coef"] = f32(t, nil, []float32{0.2}), f32(t, nil, []float32{0.2}), f32(t, nil, []float32{0.1})
			in["entropy_coeff"] = f32(t, nil, []float32{0})
			if c.prec == "fp16" {
				in[passes.LossScaleInput] = f32(t, nil, []float32{1}) // autocast without a GradScaler
			}
			got := run(t, session(t, emulate(t, filepath.Join(dir, "train.onnx"))), in)
			worst, worstF64, worstAC, at := 0.0, 0.0, 0.0, ""
			for _, name := range man.AdapterNames() {
				g := got[passes.GradPrefix+name].Floats()
				want := acFloats(c.name + ".grad." + name)
				exact := ref.floats(t, "grad."+name)
				if d := relDiff(g, want); d > worst {
					worst, at = d, name
				}
				worstF64 = math.Max(worstF64, relDiff(g, exact))
				worstAC = math.Max(worstAC, relDiff(want, exact))
			}
			loss, acLoss := got["loss"].Floats()[0], acFloats(c.name + ".grpo.loss")[0]
			t.Logf("%s %s: 56 gradients vs PyTorch autocast: worst max|diff|/max|ref| %.2g (%s); vs float64 autograd: dartc %.2g, autocast %.2g; loss %.6g vs autocast %.6g",
				ex, c.prec, worst, at, worstF64, worstAC, loss, acLoss)
			if worst > c.tol || math.IsNaN(worst) {
				t.Errorf("%s %s: gradients differ from autocast's by %.3g relative (tolerance %g)", ex, c.prec, worst, c.tol)
			}
		}
	}
}
