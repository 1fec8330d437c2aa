package orttest

import (
	"testing"

	"github.com/dartc/dartc/runtime"
)

// Init loads ONNX Runtime or fails the test with the reason and the fix.
func Init(tb testing.TB) {
	tb.Helper()
	if _, err := runtime.Init(); err != nil {
		tb.Fatalf("%v (run the tests with `make test`, which fetches the library)", err)
	}
}
