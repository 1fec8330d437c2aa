package float16

import "testing"

// Hand-computed binary16 encodings: 1, −2, the largest half, the smallest
// subnormal, the nearest half to 1/3, zero.
func TestHalfConversion(t *testing.T) {
	for _, c := range []struct {
		bits uint16
		f    float32
	}{{0x3c00, 1}, {0xc000, -2}, {0x7bff, 65504}, {0x0001, 5.9604645e-08}, {0x3555, 0.33325195}, {0, 0}} {
		if got := ToFloat32(c.bits); got != c.f {
			t.Errorf("ToFloat32(%#x) = %v, want %v", c.bits, got, c.f)
		}
		if got := FromFloat32(c.f); got != c.bits {
			t.Errorf("FromFloat32(%v) = %#x, want %#x", c.f, got, c.bits)
		}
	}
}
