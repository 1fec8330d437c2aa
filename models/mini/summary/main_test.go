package main

import (
	"math"
	"testing"
)

// The interval and the test against values computed by hand: the Wilson
// bound for 0 of 8 is z²/(n+z²); P(Bin(10,½) ≥ 9) = 11/1024.
func TestWilsonAndSignTest(t *testing.T) {
	const z2 = 1.959964 * 1.959964
	if lo, hi := wilson(0, 8); lo > 1e-12 || math.Abs(hi-z2/(8+z2)) > 1e-12 {
		t.Errorf("wilson(0, 8) = [%g, %g], want [0, %g]", lo, hi, z2/(8+z2))
	}
	if lo, hi := wilson(5, 10); math.Abs(lo+hi-1) > 1e-12 || hi-lo < 0.5 {
		t.Errorf("wilson(5, 10) = [%g, %g]: want symmetric about 0.5 and wide", lo, hi)
	}
	if p := signTest(9, 1); math.Abs(p-11.0/1024) > 1e-12 {
		t.Errorf("signTest(9, 1) = %g, want %g", p, 11.0/1024)
	}
	if p := signTest(0, 0); p != 1 {
		t.Errorf("signTest(0, 0) = %g, want 1", p)
	}
}
