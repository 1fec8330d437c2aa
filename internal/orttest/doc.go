// Package orttest loads ONNX Runtime for tests. A test that needs ONNX
// Runtime calls Init; a missing library fails the test (never skips it), so
// that CI cannot pass without running the real runtime.
package orttest
