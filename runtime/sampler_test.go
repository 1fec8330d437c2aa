package runtime_test

import (
	"math/rand/v2"
	"testing"

	"github.com/dartc/dartc/runtime"
)

// TestSamplerMatchesFilter draws from Sampler and compares the frequencies
// with Filter's distribution (the sorting reference) by a χ² test at
// significance 1e-4: random and tied logits, temperature, top-k, top-p and
// their combinations.
func TestSamplerMatchesFilter(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 1))
	const V, n = 40, 20000
	random := make([]float32, V)
	for i := range random {
		random[i] = float32(rng.NormFloat64() * 1.5)
	}
	tied := make([]float32, V)
	for i := range tied {
		tied[i] = float32(i % 4) // four levels, ten ids each
	}
	var sm runtime.Sampler
	for _, logits := range [][]float32{random, tied} {
		x := make([]float64, V)
		for i, v := range logits {
			x[i] = float64(v)
		}
		for _, s := range []runtime.Sampling{
			{Temperature: 1}, {Temperature: 0.6}, {Temperature: 1, TopK: 6}, {Temperature: 1, TopP: 0.7},
			{Temperature: 1.7, TopK: 15, TopP: 0.5}, {Temperature: 0.8, TopP: 0.2}, {Temperature: 1, TopK: 13},
		} {
			c := s.Filter(x)
			probs := make([]float64, V)
			for i, tok := range c.Tokens {
				probs[tok] = c.Probs[i]
			}
			counts := make([]int, V)
			for range n {
				counts[sm.Draw(s, logits, rng)]++
			}
			stat, df := chi2(counts, probs, n)
			if crit := chi2Critical(max(df, 1), z4); stat > crit {
				t.Errorf("%+v: χ² %.1f > %.1f (%d df)\ncounts %v\nprobs %v", s, stat, crit, df, counts, probs)
			}
		}
	}
}

// TestSamplerDoesNotAllocate: once its buffers have grown, a draw over the
// full Qwen2 vocabulary allocates nothing, with top-k and top-p.
func TestSamplerDoesNotAllocate(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	logits := make([]float32, 151936)
	for i := range logits {
		logits[i] = float32(rng.NormFloat64())
	}
	var sm runtime.Sampler
	for _, s := range []runtime.Sampling{{Temperature: 1, TopP: 0.95}, {Temperature: 0.7, TopK: 50, TopP: 0.9}} {
		sm.Draw(s, logits, rng)
		if a := testing.AllocsPerRun(5, func() { sm.Draw(s, logits, rng) }); a != 0 {
			t.Errorf("%+v: %.1f allocations per draw", s, a)
		}
	}
	if a := testing.AllocsPerRun(5, func() { runtime.LogSumExp32(logits) }); a != 0 {
		t.Errorf("LogSumExp32: %.1f allocations", a)
	}
}

// BenchmarkSamplerFlat152k: one top-p 0.95 draw from a nearly flat
// 151,936-token distribution (a random model's): the nucleus is most of the
// vocabulary. Run: go test ./runtime -run '^$' -bench SamplerFlat
func BenchmarkSamplerFlat152k(b *testing.B) {
	rng := rand.New(rand.NewPCG(3, 3))
	logits := make([]float32, 151936)
	for i := range logits {
		logits[i] = float32(rng.NormFloat64() * 0.1)
	}
	var sm runtime.Sampler
	s := runtime.Sampling{Temperature: 1, TopP: 0.95}
	b.ReportAllocs()
	for b.Loop() {
		sm.Draw(s, logits, rng)
	}
}
