package runtime_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dartc/dartc/runtime"
)

// The known distribution: token → probability.
var known = []float64{0.10, 0.50, 0.05, 0.20, 0.15}

func knownLogits(shift float64) []float64 {
	l := make([]float64, len(known))
	for i, p := range known {
		l[i] = math.Log(p) + shift // a shift must change nothing
	}
	return l
}

func TestFilterKeepsExactlyTheRightTokens(t *testing.T) {
	cases := []struct {
		name   string
		s      runtime.Sampling
		tokens []int
		probs  []float64 // hand-computed
	}{
		{"greedy", runtime.Sampling{}, []int{1}, []float64{1}},
		// Untruncated candidates stay in vocabulary order (no sort needed to draw).
		{"T=1 keeps all", runtime.Sampling{Temperature: 1}, []int{0, 1, 2, 3, 4}, known},
		{"top-k 2", runtime.Sampling{Temperature: 1, TopK: 2}, []int{1, 3}, []float64{0.5 / 0.7, 0.2 / 0.7}},
		{"top-k larger than vocab", runtime.Sampling{Temperature: 1, TopK: 9}, []int{0, 1, 2, 3, 4}, known},
		{"top-p 0.45", runtime.Sampling{Temperature: 1, TopP: 0.45}, []int{1}, []float64{1}},
		{"top-p 0.55", runtime.Sampling{Temperature: 1, TopP: 0.55}, []int{1, 3}, []float64{0.5 / 0.7, 0.2 / 0.7}},
		{"top-p 0.75", runtime.Sampling{Temperature: 1, TopP: 0.75}, []int{1, 3, 4}, []float64{0.5 / 0.85, 0.2 / 0.85, 0.15 / 0.85}},
		// Top-k first renormalises {1,3,4} to .588/.235/.176: the mass before
		// token 4 is then .824 ≥ .8, so top-p drops it (alone, top-p .8 keeps it).
		{"top-k 3 then top-p 0.8", runtime.Sampling{Temperature: 1, TopK: 3, TopP: 0.8}, []int{1, 3}, []float64{0.5 / 0.7, 0.2 / 0.7}},
		{"top-p 0.8 alone", runtime.Sampling{Temperature: 1, TopP: 0.8}, []int{1, 3, 4}, []float64{0.5 / 0.85, 0.2 / 0.85, 0.15 / 0.85}},
		// Temperature 2 is p^(1/2) renormalised.
		{"T=2", runtime.Sampling{Temperature: 2}, []int{0, 1, 2, 3, 4}, sqrtNormalised([]int{0, 1, 2, 3, 4})},
		{"T=2 top-k 2", runtime.Sampling{Temperature: 2, TopK: 2}, []int{1, 3}, sqrtNormalised([]int{1, 3})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.s.Filter(knownLogits(3.7))
			if fmt.Sprint(got.Tokens) != fmt.Sprint(c.tokens) {
				t.Fatalf("kept %v, want %v", got.Tokens, c.tokens)
			}
			for i := range c.probs {
				if math.Abs(got.Probs[i]-c.probs[i]) > 1e-12 {
					t.Errorf("p(%d) = %.15f, want %.15f", got.Tokens[i], got.Probs[i], c.probs[i])
				}
			}
		})
	}
}

func sqrtNormalised(tokens []int) []float64 {
	sum := 0.0
	for _, tok := range tokens {
		sum += math.Sqrt(known[tok])
	}
	out := make([]float64, len(tokens))
	for i, tok := range tokens {
		out[i] = math.Sqrt(known[tok]) / sum
	}
	return out
}

func TestFilterTiesGoToLowerID(t *testing.T) {
	got := runtime.Sampling{Temperature: 1, TopK: 2}.Filter([]float64{0, 1, 1, 1})
	if fmt.Sprint(got.Tokens) != "[1 2]" {
		t.Fatalf("kept %v, want [1 2]", got.Tokens)
	}
	if runtime.Argmax([]float64{0, 3, 3}) != 1 {
		t.Fatal("argmax tie not the lower id")
	}
}

// TestTopKMatchesBruteForce checks the heap selection on random logits:
// a token is kept iff fewer than k tokens rank strictly before it.
func TestTopKMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 50 {
		n, k := 1+rng.IntN(300), 1+rng.IntN(20)
		logits := make([]float64, n)
		for i := range logits {
			logits[i] = float64(rng.IntN(40)) / 4 // many ties
		}
		got := runtime.Sampling{Temperature: 1, TopK: k}.Filter(logits)
		kept := map[int]bool{}
		for _, tok := range got.Tokens {
			kept[tok] = true
		}
		for i := range logits {
			before := 0
			for j := range logits {
				if logits[j] > logits[i] || (logits[j] == logits[i] && j < i) {
					before++
				}
			}
			if (before < k) != kept[i] {
				t.Fatalf("trial %d: token %d (rank %d, k %d) kept=%v", trial, i, before, k, kept[i])
			}
		}
	}
}

func TestDrawFrequenciesAndLogProbs(t *testing.T) {
	s := runtime.Sampling{Temperature: 1, TopP: 0.75}
	rng := runtime.RowRNG(7, 0)
	counts := map[int]int{}
	const n = 40000
	logits := knownLogits(-1.3)
	for range n {
		tok, lp, slp := s.Draw(logits, rng)
		counts[tok]++
		if math.Abs(lp-math.Log(known[tok])) > 1e-12 {
			t.Fatalf("policy log-prob of %d = %g, want log %g", tok, lp, known[tok])
		}
		if math.Abs(slp-math.Log(known[tok]/0.85)) > 1e-12 {
			t.Fatalf("sampled log-prob of %d = %g, want log(%g/0.85)", tok, slp, known[tok])
		}
	}
	for tok, want := range map[int]float64{1: 0.5 / 0.85, 3: 0.2 / 0.85, 4: 0.15 / 0.85, 0: 0, 2: 0} {
		if got := float64(counts[tok]) / n; math.Abs(got-want) > 0.01 {
			t.Errorf("token %d drawn %.4f of the time, want %.4f", tok, got, want)
		}
	}
}

func TestSamplingValidate(t *testing.T) {
	for _, s := range []runtime.Sampling{{Temperature: -1}, {TopK: -2}, {TopP: 1.5}, {Temperature: math.NaN()}} {
		if err := s.Validate(); err == nil {
			t.Errorf("%+v accepted", s)
		}
	}
}
