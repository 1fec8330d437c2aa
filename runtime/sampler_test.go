package runtime_test

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

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
				tok, err := sm.Draw(s, logits, rng)
				if err != nil {
					t.Fatalf("%+v: %v", s, err)
				}
				counts[tok]++
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

// TestSamplerNonFiniteLogits: logits holding a NaN or +Inf (a diverged
// model) give weights without a finite sum. Draw must say so: with top-p
// its rejection loop compared every proposal against NaN, rejected them
// all and never returned. The draw runs in a goroutine so that a
// regression fails the test instead of hanging the package.
func TestSamplerNonFiniteLogits(t *testing.T) {
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	for _, c := range []struct {
		name   string
		logits []float32
	}{
		{"one NaN", []float32{1, 2, 3, nan}},
		{"all NaN", []float32{nan, nan, nan, nan}},
		{"+Inf", []float32{1, inf, 3, 0.5}},
		{"all -Inf", []float32{-inf, -inf, -inf, -inf}},
	} {
		for _, s := range []runtime.Sampling{{Temperature: 1, TopP: 0.9}, {Temperature: 1}, {Temperature: 0.7, TopK: 3, TopP: 0.5}} {
			done := make(chan error, 1)
			go func() {
				var sm runtime.Sampler
				_, err := sm.Draw(s, c.logits, runtime.RowRNG(1, 0))
				done <- err
			}()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "not finite") {
					t.Errorf("%s, %+v: err = %v, want the logits named not finite", c.name, s, err)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("%s, %+v: Draw did not return within 5 s", c.name, s)
			}
		}
	}
}
