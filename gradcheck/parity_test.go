package gradcheck_test

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/gradcheck"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/runtime"
)

// TestParityDryRun runs the CPU-versus-device comparison with the CPU on
// both sides (the dry run of scripts/gpu-check.sh): every graph must be
// compared over the values it produces, and the CPU must agree with itself
// exactly — the two sides get the same inputs and adapters (the device side
// decodes with the resident decoder, the CPU side with host tensors). A CUDA
// comparison on a machine without the CUDA provider fails with ErrNoCUDA.
func TestParityDryRun(t *testing.T) {
	orttest.Init(t)
	cfg, err := qwen2.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res, err := synth.Synthesize(cfg, filepath.Join(dir, "src"), synth.Options{KVCache: true, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	if _, err := compiler.Compile(res.ModelPath, out, compiler.Options{Rank: 4, Alpha: 8}); err != nil {
		t.Fatal(err)
	}
	r, err := gradcheck.Parity(out, gradcheck.ParityOptions{Device: runtime.DeviceCPU, Seed: 1, Batch: 2, SeqLen: 12, DecodeSteps: 6, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	if r.Logprobs.N != 24 || r.Loss.N != 1 || r.Grads.N == 0 || r.DecodeTotal != 12 || r.Decode.N != 12 {
		t.Fatalf("compared %d log-probs, %d loss, %d gradient values, %d/%d decoded tokens; want 24, 1, >0, 12/12",
			r.Logprobs.N, r.Loss.N, r.Grads.N, r.Decode.N, r.DecodeTotal)
	}
	if r.Worst() != 0 || r.DecodeSame != r.DecodeTotal {
		t.Fatalf("the CPU disagrees with itself: worst %g, %d of %d tokens", r.Worst(), r.DecodeSame, r.DecodeTotal)
	}
	if _, err := gradcheck.Parity(out, gradcheck.ParityOptions{Device: runtime.DeviceCUDA, NoDecode: true}); !errors.Is(err, runtime.ErrNoCUDA) {
		// A GPU host with the CUDA build loaded may succeed instead.
		if err != nil {
			t.Fatalf("cuda parity: err = %v, want nil or ErrNoCUDA", err)
		}
	}
}
