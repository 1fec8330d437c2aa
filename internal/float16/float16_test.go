package float16

import (
	"math"
	"testing"
)

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

// Hand-computed bfloat16 encodings: 1, 3, −2, a tie that rounds to even
// (1 + 2⁻⁸ → 1), a tie that rounds up to even (1 + 3·2⁻⁸ → 1 + 2⁻⁶), a
// value just above a tie, the float32 maximum (rounds to +Inf).
func TestBFloat16Conversion(t *testing.T) {
	for _, c := range []struct {
		f    float32
		bits uint16
	}{{1, 0x3f80}, {3, 0x4040}, {-2, 0xc000}, {1.00390625, 0x3f80}, {1.01171875, 0x3f82},
		{math.Nextafter32(1.00390625, 2), 0x3f81}, {3.4028235e38, 0x7f80}} {
		if got := BFloat16FromFloat32(c.f); got != c.bits {
			t.Errorf("BFloat16FromFloat32(%v) = %#x, want %#x", c.f, got, c.bits)
		}
	}
	if got := BFloat16ToFloat32(0x3f82); got != 1.015625 {
		t.Errorf("BFloat16ToFloat32(0x3f82) = %v, want 1.015625", got)
	}
	if nan := BFloat16FromFloat32(float32(math.NaN())); nan&0x7f80 != 0x7f80 || nan&0x7f == 0 {
		t.Errorf("NaN became %#x", nan)
	}
}
