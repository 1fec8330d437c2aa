package runtime_test

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/runtime"
)

// compileSmallVocab compiles a tiny synthesized Qwen2 with a small
// vocabulary (so that a χ² test over every token has power) and opens its
// decode.onnx with zero adapters.
func compileSmallVocab(t testing.TB, vocab int64, weights synth.WeightMode) (*runtime.Decoder, map[string]*runtime.Tensor) {
	t.Helper()
	out := compileDecode(t, int(vocab), synth.Options{Seed: 3, Weights: weights})
	d, err := runtime.NewDecoderFromManifest(out, &runtime.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Destroy() })
	if !d.HasGraphSampler() {
		t.Fatal("decode.onnx has no in-graph sampler")
	}
	return d, zeroInputs(d)
}

// chi2Critical is the upper α quantile of χ² with df degrees of freedom
// (Wilson–Hilferty; z is the standard normal's upper α quantile).
func chi2Critical(df int, z float64) float64 {
	k := float64(df)
	c := 1 - 2/(9*k) + z*math.Sqrt(2/(9*k))
	return k * c * c * c
}

// z4 is the standard normal's upper 1e-4 quantile: each χ² test below
// fails by chance once in 10,000 runs.
const z4 = 3.719

// chi2 returns Pearson's statistic of counts against probabilities and its
// degrees of freedom; categories expected below 5 draws are pooled.
func chi2(counts []int, probs []float64, n int) (float64, int) {
	stat, cats := 0.0, 0
	poolE, poolO := 0.0, 0
	for i, p := range probs {
		e := p * float64(n)
		if e < 5 {
			poolE += e
			poolO += counts[i]
			continue
		}
		stat += (float64(counts[i]) - e) * (float64(counts[i]) - e) / e
		cats++
	}
	switch {
	case poolE >= 1:
		stat += (float64(poolO) - poolE) * (float64(poolO) - poolE) / poolE
		cats++
	case poolE == 0 && poolO > 0, poolO > 3:
		stat = math.Inf(1) // draws where the reference puts (almost) no mass
	}
	return stat, cats - 1
}

// TestGraphSamplerMatchesGoReference draws many first tokens through
// decode.onnx's sampler and compares their frequencies with the Go
// reference sampler's distribution (Sampling.Filter over the same logits)
// by a χ² test at significance 1e-4, for temperature, top-k, top-p and
// their combinations; the reported log-probs must equal the log-softmax of
// the logits computed here in float64.
func TestGraphSamplerMatchesGoReference(t *testing.T) {
	const rows, reps = 2000, 4 // 8,000 draws per setting
	for _, tc := range []struct {
		name    string
		weights synth.WeightMode
		s       runtime.Sampling
		vocab   int64 // 48 when 0
	}{
		{"t1", synth.WeightsRandom, runtime.Sampling{Temperature: 1}, 0},
		{"t0.5", synth.WeightsRandom, runtime.Sampling{Temperature: 0.5}, 0},
		{"topk5", synth.WeightsRandom, runtime.Sampling{Temperature: 1, TopK: 5}, 0},
		{"topp0.6", synth.WeightsRandom, runtime.Sampling{Temperature: 1, TopP: 0.6}, 0},
		{"t2-topk10-topp0.8", synth.WeightsRandom, runtime.Sampling{Temperature: 2, TopK: 10, TopP: 0.8}, 0},
		{"topp0.3", synth.WeightsRandom, runtime.Sampling{Temperature: 0.7, TopP: 0.3}, 0},
		// Zero weights: every logit is equal; the kept set is decided by
		// token id alone. (Top-p 0.55 keeps 27 of 48 tokens; at 0.5 the
		// 25th token's preceding mass would equal p exactly, and which side
		// of the cut it falls on is rounding, in Filter and in the graph.)
		{"ties-topp0.55", synth.WeightsZero, runtime.Sampling{Temperature: 1, TopP: 0.55}, 0},
		{"ties-topk7", synth.WeightsZero, runtime.Sampling{Temperature: 1, TopK: 7}, 0},
		// A prime vocabulary: the sampler's blocks cover a padded one.
		{"prime-topp0.7", synth.WeightsRandom, runtime.Sampling{Temperature: 1, TopP: 0.7}, 47},
	} {
		t.Run(tc.name, func(t *testing.T) {
			V := cmp.Or(tc.vocab, 48)
			d, adapters := compileSmallVocab(t, V, tc.weights)
			prompt := []int64{5, 17, 3}
			ref, _, err := d.Generate(context.Background(), [][]int64{prompt}, runtime.GenerateConfig{
				MaxNewTokens: 1, Inputs: adapters, KeepLastLogits: true})
			if err != nil {
				t.Fatal(err)
			}
			logits := ref[0].LastLogits
			// The expected distribution: the Go reference sampler's.
			c := tc.s.Filter(logits)
			probs := make([]float64, V)
			for i, tok := range c.Tokens {
				probs[tok] = c.Probs[i]
			}
			// Log-softmax in float64, written out here.
			m := math.Inf(-1)
			for _, l := range logits {
				m = math.Max(m, l)
			}
			sum := 0.0
			for _, l := range logits {
				sum += math.Exp(l - m)
			}
			lse := m + math.Log(sum)

			prompts := make([][]int64, rows)
			for i := range prompts {
				prompts[i] = prompt
			}
			counts := make([]int, V)
			n, redraws := 0, 0
			for rep := 0; rep < reps; rep++ {
				seqs, st, err := d.Generate(context.Background(), prompts, runtime.GenerateConfig{
					MaxNewTokens: 1, Inputs: adapters, Sampling: tc.s, Seed: uint64(100 + rep)})
				if err != nil {
					t.Fatal(err)
				}
				redraws += st.Redraws
				for _, s := range seqs {
					tok := s.Tokens[0]
					counts[tok]++
					n++
					if want := logits[tok] - lse; math.Abs(s.LogProbs[0]-want) > 1e-5 {
						t.Fatalf("token %d: log-prob %.8f, log-softmax of the logits %.8f", tok, s.LogProbs[0], want)
					}
				}
			}
			stat, df := chi2(counts, probs, n)
			crit := chi2Critical(max(df, 1), z4)
			t.Logf("%s: kept %d tokens, χ² %.1f with %d df (critical %.1f at 1e-4), %d redraws", tc.name, len(c.Tokens), stat, df, crit, redraws)
			// With every logit equal, 27/48 of the mass kept and 4 rounds, a
			// row is rejected in every round with probability 0.036: the
			// redraw path runs at every step.
			if tc.name == "ties-topp0.55" && redraws == 0 {
				t.Errorf("no redraws: the rejection path was not exercised")
			}
			if stat > crit {
				t.Errorf("χ² %.1f > %.1f: the graph's draws do not follow the reference distribution\ncounts %v\nprobs %v", stat, crit, counts, probs)
			}
			// The test has power: the untruncated softmax at temperature 1
			// is rejected whenever the settings change the distribution.
			if tc.s.TopK > 0 || tc.s.TopP > 0 || tc.s.Temperature != 1 {
				full := runtime.Sampling{Temperature: 1}.Filter(logits)
				fp := make([]float64, V)
				for i, tok := range full.Tokens {
					fp[tok] = full.Probs[i]
				}
				if s2, df2 := chi2(counts, fp, n); s2 < chi2Critical(max(df2, 1), z4) {
					t.Errorf("χ² against the plain softmax %.1f: the settings made no detectable difference", s2)
				}
			}
		})
	}
}

// TestGraphSamplerReproducible checks that a seed fixes the sampled
// sequences and that a row's draws do not depend on the batch around it.
func TestGraphSamplerReproducible(t *testing.T) {
	d, adapters := compileSmallVocab(t, 48, synth.WeightsRandom)
	cfg := runtime.GenerateConfig{MaxNewTokens: 12, Inputs: adapters, Seed: 7,
		Sampling: runtime.Sampling{Temperature: 1, TopP: 0.9}}
	prompts := [][]int64{{1, 2, 3}, {4, 5}, {6}}
	a, _, err := d.Generate(context.Background(), prompts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := d.Generate(context.Background(), prompts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	alone, _, err := d.Generate(context.Background(), prompts[:1], cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if fmt.Sprint(a[i].Tokens, a[i].LogProbs) != fmt.Sprint(b[i].Tokens, b[i].LogProbs) {
			t.Errorf("row %d differs between runs: %v vs %v", i, a[i].Tokens, b[i].Tokens)
		}
	}
	if fmt.Sprint(a[0].Tokens) != fmt.Sprint(alone[0].Tokens) {
		t.Errorf("row 0 in a batch %v, alone %v", a[0].Tokens, alone[0].Tokens)
	}
}

// TestGenerateNonFiniteLogits: NaN adapters (a diverged training run) make
// every logit NaN. Sampled generation must fail promptly with an error
// that names the cause, on both paths: the host sampler used to spin
// forever (ignoring ctx), and the in-graph sampler, which rejects every
// proposal from NaN logits, failed after maxRedraws saying only that the
// proposals were rejected, which points at the graph instead.
func TestGenerateNonFiniteLogits(t *testing.T) {
	d, adapters := compileSmallVocab(t, 48, synth.WeightsRandom)
	for _, a := range adapters {
		v := a.Float32()
		for i := range v {
			v[i] = float32(math.NaN())
		}
	}
	rowZero := regexp.MustCompile(`\brows? 0\b`) // the error names the rows
	for _, c := range []struct{ host, greedy bool }{{false, false}, {true, false}, {false, true}} {
		host := c.host
		cfg := runtime.GenerateConfig{MaxNewTokens: 3, Inputs: adapters, Seed: 1, HostSampling: host,
			Sampling: runtime.Sampling{Temperature: 1, TopP: 0.9}}
		if c.greedy { // greedy steps used to return NaN log-probs without an error
			cfg.Sampling = runtime.Sampling{}
		}
		done := make(chan error, 1)
		go func() {
			_, _, err := d.Generate(context.Background(), [][]int64{{1, 2, 3}, {4, 5}}, cfg)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not finite") || !rowZero.MatchString(err.Error()) {
				t.Errorf("host sampling %v: err = %v, want one naming row 0 and logits that are not finite", host, err)
			}
			t.Logf("host sampling %v: %v", host, err)
		case <-time.After(30 * time.Second):
			t.Fatalf("host sampling %v: Generate did not return within 30 s", host)
		}
	}
}
