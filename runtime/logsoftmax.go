package runtime

import (
	"math"
	"sync"
)

// The decode loop needs, for every row and step, the argmax of the logits
// and their log-sum-exp (the policy log-prob of the drawn token is
// logit − log-sum-exp). Over a 152k vocabulary math.Exp per logit costs more
// than the whole ONNX Runtime step of a small model, so each term is a
// float32 exp (below), summed in float64. Its error is bounded (see expNonPositive); the
// tests check the log-sum-exp against math.Exp in float64 to 1e-6 relative.

// Cody–Waite split of ln 2: lnHi has few enough mantissa bits that n·lnHi is
// exact for |n| < 2^8, so x − n·ln 2 loses no precision.
const (
	log2E32 = float32(1.4426950408889634)
	lnHi32  = float32(0.693359375)
	lnLo32  = float32(-2.12194440e-4)
	// expFloor: below it exp underflows float32's normal range; below
	// lseCut (relative to the max) a term adds less than V·e^-40 < 1e-11
	// to a sum that is at least 1, so it is skipped.
	expFloor = float32(-86)
	lseCut   = float32(-40)
)

// expNonPositive returns e^x for x ≤ 0 with a relative error below 3e-7:
// x = n·ln 2 + r with |r| ≤ ln2/2, e^r by its Taylor polynomial of degree 7
// (truncation < 2e-9), scaled by 2^n through the exponent bits.
func expNonPositive(x float32) float32 {
	if x < expFloor {
		return 0
	}
	// Round x·log2(e) to the nearest integer; x ≤ 0 so subtract a half.
	n := int32(x*log2E32 - 0.5)
	fn := float32(n)
	r := x - fn*lnHi32 - fn*lnLo32
	p := float32(1.0 / 5040)
	p = p*r + 1.0/720
	p = p*r + 1.0/120
	p = p*r + 1.0/24
	p = p*r + 1.0/6
	p = p*r + 0.5
	p = p*r + 1
	p = p*r + 1
	return math.Float32frombits(math.Float32bits(p) + uint32(n)<<23)
}

// maxArg returns the largest value of x and its index, the lowest on ties.
func maxArg(x []float32) (float32, int) {
	best, arg := x[0], 0
	for i, v := range x {
		if v > best {
			best, arg = v, i
		}
	}
	return best, arg
}

// sumExpShifted returns Σ e^(x_i − m) over the terms above lseCut. Each
// term is expNonPositive written out in the loop (the compiler does not
// inline it, and a call per logit costs as much as the arithmetic), summed
// in float64: float32 partial sums would lose the small terms next to the
// max (e^0 = 1), which decide the log-prob of a near-certain token.
func sumExpShifted(x []float32, m float32) float64 {
	var s0, s1 float64
	for i, v := range x {
		d := v - m
		if d <= lseCut {
			continue
		}
		n := int32(d*log2E32 - 0.5)
		fn := float32(n)
		r := d - fn*lnHi32 - fn*lnLo32
		p := ((((((float32(1.0/5040)*r+1.0/720)*r+1.0/120)*r+1.0/24)*r+1.0/6)*r+0.5)*r+1)*r + 1
		e := float64(math.Float32frombits(math.Float32bits(p) + uint32(n)<<23))
		if i&1 == 0 {
			s0 += e
		} else {
			s1 += e
		}
	}
	return s0 + s1
}

// LogSumExp32 returns log Σ e^x_i and the index of the largest logit (the
// lowest on ties), in two passes over x and without allocating. It panics
// on an empty slice.
func LogSumExp32(x []float32) (lse float64, argmax int) {
	m, arg := maxArg(x)
	if math.IsInf(float64(m), 0) || math.IsNaN(float64(m)) {
		return float64(m), arg
	}
	return float64(m) + math.Log(sumExpShifted(x, m)), arg
}

// parallelMin is the vocabulary size from which a single row's reduction is
// split across goroutines (a batch of one would otherwise use one core).
const parallelMin = 1 << 15

// logSumExpSplit is LogSumExp32 with the passes split over workers
// goroutines; it returns the same argmax and agrees to rounding.
func logSumExpSplit(x []float32, workers int) (float64, int) {
	if workers < 2 || len(x) < parallelMin {
		return LogSumExp32(x)
	}
	part := (len(x) + workers - 1) / workers
	maxes := make([]float32, workers)
	args := make([]int, workers)
	sums := make([]float64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*part, min((w+1)*part, len(x))
		wg.Go(func() {
			m, a := maxArg(x[lo:hi])
			maxes[w], args[w] = m, lo+a
		})
	}
	wg.Wait()
	m, arg := maxes[0], args[0]
	for w := 1; w < workers; w++ {
		if maxes[w] > m {
			m, arg = maxes[w], args[w]
		}
	}
	if math.IsInf(float64(m), 0) || math.IsNaN(float64(m)) {
		return float64(m), arg
	}
	for w := range workers {
		lo, hi := w*part, min((w+1)*part, len(x))
		wg.Go(func() { sums[w] = sumExpShifted(x[lo:hi], m) })
	}
	wg.Wait()
	total := 0.0
	for _, s := range sums {
		total += s
	}
	return float64(m) + math.Log(total), arg
}
