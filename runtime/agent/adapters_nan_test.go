package agent_test

import (
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/runtime/agent"
	"github.com/dartc/dartc/safetensors"
)

// TestAdaptersWithNaNRefused: an adapters file holding a NaN (a diverged
// run) is refused on load, naming the tensor, instead of making every
// logit NaN.
func TestAdaptersWithNaNRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "adapters.safetensors")
	a := safetensors.FromFloat32("x.lora_A.reason.weight", []int64{2, 2}, []float32{1, 2, float32(math.NaN()), 4})
	if err := safetensors.Write(path, []safetensors.Tensor{a}, nil); err != nil {
		t.Fatal(err)
	}
	inputs := []runtime.IOInfo{{Name: a.Name, DType: runtime.Float32, Dims: []int64{2, 2}}}
	_, err := agent.LoadAdapters(path, inputs)
	if !errors.Is(err, safetensors.ErrNonFinite) || !strings.Contains(err.Error(), a.Name) {
		t.Fatalf("got %v, want ErrNonFinite naming %s", err, a.Name)
	}
}
