package runtime_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/runtime"
)

// TestCarriedCacheEqualsPrefill generates a first turn for rows of
// different lengths, appends "observations" of different lengths, and
// generates a second turn twice: carrying each row's KV cache (only the
// new tokens are fed) and re-running the prefill of the whole context. The
// tokens must agree and the log-probs within 1e-5, for one agent and two,
// greedy and sampled in the graph; the first step of the carried turn must
// feed exactly the new tokens.
func TestCarriedCacheEqualsPrefill(t *testing.T) {
	d, adapters := compileSmallVocab(t, 64, synth.WeightsRandom)
	// Non-zero adapters, so that the two agents' caches differ.
	for name, a := range adapters {
		v := a.Float32()
		for i := range v {
			v[i] = float32(math.Sin(float64(i)+float64(len(name)))) * 0.05
		}
	}
	for _, agents := range []int{1, 2} {
		for _, s := range []runtime.Sampling{{}, {Temperature: 1, TopP: 0.9}} {
			t.Run(fmt.Sprintf("agents=%d/%+v", agents, s), func(t *testing.T) {
				prompts := [][]int64{{1, 2, 3, 4, 5, 6, 7}, {9, 8}, {3, 3, 3, 3}}
				roles := func(row int, tokens []int64) int64 { return tokens[len(tokens)-1] % 2 }
				caches := make([]*runtime.RowCache, len(prompts))
				for i := range caches {
					caches[i] = &runtime.RowCache{}
				}
				cfg := runtime.GenerateConfig{MaxNewTokens: 6, Inputs: adapters, Sampling: s, Seed: 5, Agents: agents, Roles: roles, StopTokens: []int64{0}}
				cfg.Cache = caches
				first, _, err := d.Generate(context.Background(), prompts, cfg)
				if err != nil {
					t.Fatal(err)
				}
				next := make([][]int64, len(prompts))
				newTokens := 0
				for i, sq := range first {
					if got, want := caches[i].Len(), len(sq.Prompt)+len(sq.Tokens)-1; got != want {
						t.Errorf("row %d: the cache holds %d tokens, want %d (prompt and generated but the last)", i, got, want)
					}
					obs := []int64{20, 21, 22, 23, 24}[:1+2*i]
					next[i] = append(append(append([]int64(nil), sq.Prompt...), sq.Tokens...), obs...)
					newTokens += len(next[i]) - caches[i].Len()
				}
				cfg.Seed = 6
				carried, st, err := d.Generate(context.Background(), next, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if st.Prefill != newTokens {
					t.Errorf("carried turn prefilled %d tokens, want the %d new ones", st.Prefill, newTokens)
				}
				cfg.Cache = nil
				full, st2, err := d.Generate(context.Background(), next, cfg)
				if err != nil {
					t.Fatal(err)
				}
				if want := len(next[0]) + len(next[1]) + len(next[2]); st2.Prefill != want {
					t.Errorf("re-prefill fed %d tokens, want %d", st2.Prefill, want)
				}
				for i := range next {
					if fmt.Sprint(carried[i].Tokens) != fmt.Sprint(full[i].Tokens) || fmt.Sprint(carried[i].Roles) != fmt.Sprint(full[i].Roles) {
						t.Fatalf("row %d: carried %v %v\n        re-prefilled %v %v", i, carried[i].Tokens, carried[i].Roles, full[i].Tokens, full[i].Roles)
					}
					for j := range carried[i].LogProbs {
						if diff := math.Abs(carried[i].LogProbs[j] - full[i].LogProbs[j]); diff > 1e-5 {
							t.Errorf("row %d token %d: log-prob carried %.8f, re-prefilled %.8f", i, j, carried[i].LogProbs[j], full[i].LogProbs[j])
						}
					}
				}
			})
		}
	}
}

// TestCacheLengthMismatchRefused: GenerateConfig.Cache holds one RowCache
// per prompt, as RNGs holds one RNG per prompt. A slice of another length
// is a caller's mistake that must come back as an error naming both
// counts; indexing it by row used to panic inside Generate.
func TestCacheLengthMismatchRefused(t *testing.T) {
	d := openLlama(t, 0)
	for _, n := range []int{1, len(batchPrompts) + 1} {
		caches := make([]*runtime.RowCache, n)
		for i := range caches {
			caches[i] = &runtime.RowCache{}
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%d caches for %d prompts: Generate panicked: %v", n, len(batchPrompts), r)
				}
			}()
			_, _, err := d.Generate(context.Background(), batchPrompts, runtime.GenerateConfig{MaxNewTokens: 2, PadToken: 2, Cache: caches})
			want := fmt.Sprintf("%d caches in GenerateConfig.Cache for %d prompts", n, len(batchPrompts))
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%d caches for %d prompts: err = %v, want one saying %q", n, len(batchPrompts), err, want)
			}
		}()
	}
}
