package peft

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/dartc/dartc/safetensors"
)

// TestExportRefusesNaN: export-peft does not write a PEFT directory from
// adapters holding a NaN.
func TestExportRefusesNaN(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "adapters.safetensors")
	a := safetensors.FromFloat64("model.layers.0.self_attn.q_proj.lora_A.reason.weight", []int64{1, 2}, []float64{math.Inf(1), 0})
	if err := safetensors.Write(src, []safetensors.Tensor{a}, nil); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "peft")
	if err := Export(src, "reason", out); !errors.Is(err, safetensors.ErrNonFinite) {
		t.Fatalf("got %v, want ErrNonFinite", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("a PEFT directory was written")
	}
}
