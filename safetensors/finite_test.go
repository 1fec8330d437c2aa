package safetensors

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
)

func TestCheckFinite(t *testing.T) {
	f16 := func(bits ...uint16) Tensor {
		b := make([]byte, 2*len(bits))
		for i, v := range bits {
			binary.LittleEndian.PutUint16(b[2*i:], v)
		}
		return Tensor{Name: "h", DType: F16, Shape: []int64{int64(len(bits))}, Data: b}
	}
	bf16 := func(bits ...uint16) Tensor { t := f16(bits...); t.DType = BF16; return t }
	cases := []struct {
		name string
		t    Tensor
		bad  string // "" when finite
	}{
		{"f32 finite", FromFloat32("a", []int64{3}, []float32{1, -2, math.MaxFloat32}), ""},
		{"f32 nan", FromFloat32("a", []int64{3}, []float32{1, float32(math.NaN()), 0}), "element 1 of 3 is NaN"},
		{"f64 inf", FromFloat64("a", []int64{2}, []float64{0, math.Inf(-1)}), "element 1 of 2 is -Inf"},
		{"f16 max", f16(0x7bff, 0xfbff), ""},
		{"f16 inf", f16(0x3c00, 0xfc00), "element 1"},
		{"f16 nan", f16(0x7e00), "NaN"},
		{"bf16 finite", bf16(0x7f7f, 0x3f80), ""},
		{"bf16 nan", bf16(0x7fc0), "NaN"},
		{"ints never", FromInt64("i", []int64{1}, []int64{-1}), ""},
	}
	for _, c := range cases {
		err := (&File{Tensors: []Tensor{c.t}}).CheckFinite()
		switch {
		case c.bad == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.bad != "" && (!errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), c.bad)):
			t.Errorf("%s: got %v, want ErrNonFinite saying %q", c.name, err, c.bad)
		}
	}
}
