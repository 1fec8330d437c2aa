package kernels

import (
	"testing"

	"github.com/dartc/dartc/ir"
)

// The CUDA table holds the bfloat16 gaps of ONNX Runtime 1.30 and its
// float16 coverage; the CPU table has no bfloat16 MatMul.
func TestTables(t *testing.T) {
	cuda, err := For(CUDA)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"ArgMax", "Cos", "Sin", "Einsum", "Greater", "LessOrEqual", "LogSoftmax", "Reciprocal",
		"ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceSumSquare", "Pad"} {
		if cuda.Has(op, ir.BFloat16) {
			t.Errorf("cuda: %s listed for bfloat16", op)
		}
		if !cuda.Has(op, ir.Float16) || !cuda.Has(op, ir.Float32) {
			t.Errorf("cuda: %s missing float16 or float32", op)
		}
	}
	if cuda.Has("Pad", ir.Int64) || !cuda.Has("MatMul", ir.BFloat16) || !cuda.Has("Softmax", ir.BFloat16) {
		t.Error("cuda: Pad int64, MatMul or Softmax bfloat16 wrong")
	}
	cpu, _ := For(CPU)
	if cpu.Has("MatMul", ir.BFloat16) || cpu.Has("MatMul", ir.Float16) || !cpu.Has("Gather", ir.BFloat16) {
		t.Error("cpu: MatMul or Gather wrong")
	}
	if _, err := For("tpu"); err == nil {
		t.Error("unknown provider accepted")
	}
	if _, err := Parse("x", []byte("Add float32\nAdd float16\n")); err == nil {
		t.Error("an op listed twice was accepted")
	}
	if _, err := Parse("x", []byte("Add float33\n")); err == nil {
		t.Error("an unknown type was accepted")
	}
}
