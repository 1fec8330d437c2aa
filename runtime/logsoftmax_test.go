package runtime

import (
	"math"
	"math/rand/v2"
	"testing"
)

// exactLogSumExp is the reference: float64 throughout, math.Exp per term.
func exactLogSumExp(x []float32) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		m = max(m, float64(v))
	}
	s := 0.0
	for _, v := range x {
		s += math.Exp(float64(v) - m)
	}
	return m + math.Log(s)
}

func TestExpNonPositiveRelativeError(t *testing.T) {
	worst := 0.0
	for x := float32(0); x > -80; x -= 0.000731 {
		got, want := float64(expNonPositive(x)), math.Exp(float64(x))
		if rel := math.Abs(got-want) / want; rel > worst {
			worst = rel
		}
	}
	if worst > 3e-7 {
		t.Fatalf("worst relative error %.3g over [-80, 0], want ≤ 3e-7", worst)
	}
	if expNonPositive(-200) != 0 || expNonPositive(float32(math.Inf(-1))) != 0 {
		t.Fatal("deep underflow must give 0")
	}
	t.Logf("worst relative error %.3g", worst)
}

// TestLogSumExp32MatchesMathExp checks the fast log-sum-exp, and so the
// policy log-prob logit − lse, against float64 math.Exp to 1e-6 relative on
// logits shaped like a model's: a vocabulary-sized spread, peaked rows and
// flat rows.
func TestLogSumExp32MatchesMathExp(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, c := range []struct {
		name  string
		V     int
		scale float64
	}{{"flat 152k", 151936, 0.05}, {"spread 152k", 151936, 3}, {"peaked 32k", 32000, 12}, {"tiny", 5, 1}} {
		x := make([]float32, c.V)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * c.scale)
		}
		x[c.V/3] += float32(8 * c.scale) // a clear winner
		want := exactLogSumExp(x)
		for _, workers := range []int{1, 2, 3} {
			got, arg := logSumExpSplit(x, workers)
			if arg != c.V/3 {
				t.Errorf("%s, %d workers: argmax %d, want %d", c.name, workers, arg, c.V/3)
			}
			for _, tok := range []int{0, c.V / 3, c.V - 1} {
				lpGot, lpWant := float64(x[tok])-got, float64(x[tok])-want
				if rel := math.Abs(lpGot-lpWant) / math.Abs(lpWant); rel > 1e-6 {
					t.Errorf("%s, %d workers: log-prob of %d is %.9g, math.Exp gives %.9g (relative %.2g)", c.name, workers, tok, lpGot, lpWant, rel)
				}
			}
		}
	}
}

func TestLogSumExp32Ties(t *testing.T) {
	x := []float32{1, 3, 3, 2}
	if _, arg := LogSumExp32(x); arg != 1 {
		t.Fatalf("argmax %d, want the lowest index 1 of the tie", arg)
	}
	inf := float32(math.Inf(1))
	if lse, arg := LogSumExp32([]float32{0, inf, 1}); !math.IsInf(lse, 1) || arg != 1 {
		t.Fatalf("+Inf logit: lse %v arg %d", lse, arg)
	}
}

func BenchmarkLogSumExp32(b *testing.B) {
	x := make([]float32, 151936)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(4 * len(x)))
		for b.Loop() {
			LogSumExp32(x)
		}
	})
	b.Run("fast-split2", func(b *testing.B) {
		b.SetBytes(int64(4 * len(x)))
		for b.Loop() {
			logSumExpSplit(x, 2)
		}
	})
	b.Run("math.Exp", func(b *testing.B) {
		b.SetBytes(int64(4 * len(x)))
		for b.Loop() {
			exactLogSumExp(x)
		}
	})
}
