package runtime_test

import (
	"testing"

	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/runtime"
)

func TestInitLoadsPinnedVersion(t *testing.T) {
	orttest.Init(t)
	if got := runtime.Version(); got != runtime.ORTVersion {
		t.Fatalf("loaded ONNX Runtime %s, want %s", got, runtime.ORTVersion)
	}
}
