package safetensors

import (
	"bytes"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/go_written.safetensors")

// goldenTensors is the content of testdata/go_written.safetensors, which
// testdata/check_go_written.py reads with the Python safetensors package.
func goldenTensors() ([]Tensor, map[string]string) {
	return []Tensor{
		FromFloat32("model.layers.0.self_attn.q_proj.lora_A.reason.weight", []int64{3, 2}, []float32{1, -2, 3.5, 0, 1e-3, -7}),
		FromFloat64("f64", []int64{2}, []float64{0.1, -1e300}),
		FromInt64("ids", []int64{2, 2}, []int64{-1, 0, 1 << 40, 7}),
		{Name: "flags", DType: BOOL, Shape: []int64{3}, Data: []byte{1, 0, 1}},
		{Name: "half", DType: F16, Shape: []int64{2}, Data: []byte{0x00, 0x3c, 0x00, 0xc0}}, // 1, -2
		{Name: "empty", DType: F32, Shape: []int64{0, 4}},
	}, map[string]string{"rank": "2", "alpha": "16", "roles": "reason,tool"}
}

// TestGoldenEncoding keeps Write's bytes stable; the Python check of the
// same file shows that the reference reader accepts them.
func TestGoldenEncoding(t *testing.T) {
	ts, meta := goldenTensors()
	got, err := Encode(ts, meta)
	if err != nil {
		t.Fatal(err)
	}
	const path = "testdata/go_written.safetensors"
	if *update {
		if err := Write(path, ts, meta); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Encode output differs from %s (run go test -run TestGoldenEncoding -update and re-run check_go_written.py)", path)
	}
}
