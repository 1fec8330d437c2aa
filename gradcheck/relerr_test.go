package gradcheck

import (
	"math"
	"testing"
)

// TestRelErrFailsNonFinite: a NaN or infinite difference or gradient is an
// error above every tolerance (NaN used to come out as 0: a pass).
func TestRelErrFailsNonFinite(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, c := range [][2]float64{{nan, 1}, {1, nan}, {nan, nan}, {inf, 1}, {1, -inf}, {0, nan}} {
		if r := relErr(c[0], c[1]); !(r > 1e300) {
			t.Errorf("relErr(%v, %v) = %v, want +Inf", c[0], c[1], r)
		}
	}
	for _, c := range []struct{ num, ana, want float64 }{{0, 0, 0}, {1, 1, 0}, {2, 1, 0.5}, {-1, 1, 2}, {1e-12, 0, 1e-4}} {
		if r := relErr(c.num, c.ana); math.Abs(r-c.want) > 1e-15 {
			t.Errorf("relErr(%v, %v) = %v, want %v", c.num, c.ana, r, c.want)
		}
	}
}
