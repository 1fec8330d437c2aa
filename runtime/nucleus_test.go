package runtime_test

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"

	"github.com/dartc/dartc/runtime"
)

// TestTopPMatchesSortedReference: top-p without a full sort keeps exactly
// the tokens, with the probabilities, that sorting the whole vocabulary
// and cutting where the mass before a token reaches p keeps — on flat
// distributions (a nucleus of most of the vocabulary, left unordered) and
// peaked ones (a small nucleus, ordered).
func TestTopPMatchesSortedReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 2))
	for trial := 0; trial < 40; trial++ {
		v := 50 + rng.IntN(20000)
		spread := []float64{0.05, 1, 8}[trial%3] // flat … peaked
		logits := make([]float64, v)
		for i := range logits {
			logits[i] = spread * rng.NormFloat64()
		}
		if trial%5 == 0 { // ties
			for i := range logits {
				logits[i] = math.Round(logits[i])
			}
		}
		s := runtime.Sampling{Temperature: []float64{1, 0.7, 1.3}[trial%3], TopP: []float64{0.95, 0.5, 0.9}[trial%3]}
		got := s.Filter(logits)

		order := make([]int, v)
		for i := range order {
			order[i] = i
		}
		sort.Slice(order, func(i, j int) bool {
			a, b := order[i], order[j]
			if logits[a] != logits[b] {
				return logits[a] > logits[b]
			}
			return a < b
		})
		m := logits[order[0]] / s.Temperature
		total := 0.0
		for _, tok := range order {
			total += math.Exp(logits[tok]/s.Temperature - m)
		}
		want := map[int]float64{}
		cum := 0.0
		for _, tok := range order {
			if cum >= s.TopP {
				break
			}
			p := math.Exp(logits[tok]/s.Temperature-m) / total
			want[tok] = p
			cum += p
		}
		if len(got.Tokens) != len(want) {
			t.Fatalf("trial %d (V %d): %d tokens kept, the sorted cut keeps %d", trial, v, len(got.Tokens), len(want))
		}
		for i, tok := range got.Tokens {
			p, ok := want[tok]
			if !ok {
				t.Fatalf("trial %d: token %d kept, not in the nucleus", trial, tok)
			}
			if d := math.Abs(got.Probs[i] - p/cum); d > 1e-12 {
				t.Fatalf("trial %d: p(%d) = %g, want %g", trial, tok, got.Probs[i], p/cum)
			}
		}
	}
}

func BenchmarkTopPFlat152k(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	logits := make([]float64, 151936)
	for i := range logits {
		logits[i] = 0.05 * rng.NormFloat64()
	}
	s := runtime.Sampling{Temperature: 1, TopP: 0.95}
	for b.Loop() {
		s.Filter(logits)
	}
}
