package safetensors

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteStreamEqualsWrite: streaming the same tensors gives the same
// bytes as the in-memory writer.
func TestWriteStreamEqualsWrite(t *testing.T) {
	tensors := []Tensor{
		FromFloat32("a", []int64{2, 3}, []float32{1, 2, 3, 4, 5, 6}),
		FromFloat64("b", []int64{2}, []float64{-1, math.Pi}),
		FromInt64("c", nil, []int64{7}),
	}
	meta := map[string]string{"rank": "4"}
	dir := t.TempDir()
	if err := Write(filepath.Join(dir, "a.safetensors"), tensors, meta); err != nil {
		t.Fatal(err)
	}
	specs := make([]Tensor, len(tensors))
	for i, x := range tensors {
		specs[i] = Tensor{Name: x.Name, DType: x.DType, Shape: x.Shape}
	}
	err := WriteStream(filepath.Join(dir, "b.safetensors"), specs, meta, func(i int, dst []byte) error {
		copy(dst, tensors[i].Data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := os.ReadFile(filepath.Join(dir, "a.safetensors"))
	b, _ := os.ReadFile(filepath.Join(dir, "b.safetensors"))
	if !bytes.Equal(a, b) {
		t.Fatalf("streamed file differs from Write's (%d vs %d bytes)", len(b), len(a))
	}
	if n := binary.LittleEndian.Uint64(b); n%8 != 0 {
		t.Fatalf("header length %d is not a multiple of 8", n)
	}
}

func TestWriteStreamFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.safetensors")
	err := WriteStream(path, []Tensor{{Name: "a", DType: F32, Shape: []int64{2}}}, nil, func(int, []byte) error {
		return os.ErrInvalid
	})
	if err == nil {
		t.Fatal("fill error was ignored")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left %d files behind", len(entries))
	}
}
