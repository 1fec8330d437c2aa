package safetensors

import (
	"path/filepath"
	"testing"
)

// benchTensors is 64 MiB of F32 in 64 tensors, the size of a rank-64
// adapter set of a 0.5B model.
func benchTensors() []Tensor {
	ts := make([]Tensor, 64)
	for i := range ts {
		ts[i] = Tensor{Name: "model.layers." + string(rune('a'+i%26)) + string(rune('a'+i/26)) + ".weight", DType: F32, Shape: []int64{512, 512}, Data: make([]byte, 1<<20)}
	}
	return ts
}

func BenchmarkEncode64MiB(b *testing.B) {
	ts := benchTensors()
	b.SetBytes(64 << 20)
	for b.Loop() {
		if _, err := Encode(ts, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse64MiB(b *testing.B) {
	raw, _ := Encode(benchTensors(), nil)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteRead64MiB(b *testing.B) {
	ts := benchTensors()
	path := filepath.Join(b.TempDir(), "x.safetensors")
	b.SetBytes(64 << 20)
	for b.Loop() {
		if err := Write(path, ts, nil); err != nil {
			b.Fatal(err)
		}
		if _, err := Read(path); err != nil {
			b.Fatal(err)
		}
	}
}
