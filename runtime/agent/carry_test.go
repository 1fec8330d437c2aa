package agent_test

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/dartc/dartc/retrieval/bm25"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/runtime/agent"
)

// TestCarriedCacheRollouts: rollouts carrying each row's KV cache from turn
// to turn equal those that re-run the prefill of the whole context at every
// turn (tokens and roles identical, log-probs within 1e-5), dual and
// two-agent, sampled; and the carried rollouts prefill each token once:
// the prompt, the observations, and the one token each turn left unfed
// (its last), where re-prefilling feeds the whole context at every turn.
func TestCarriedCacheRollouts(t *testing.T) {
	idx, err := bm25.Open(setup(t).index)
	if err != nil {
		t.Fatal(err)
	}
	qs := []agent.Question{{ID: "q1", Question: "what fruit is a plum"}, {ID: "q2", Question: "capital of France?"}}
	for _, two := range []bool{false, true} {
		t.Run(fmt.Sprintf("two-agent=%v", two), func(t *testing.T) {
			cfg := agent.Config{Searcher: idx, MaxTurns: 2, MaxTurnTokens: 10, TwoAgent: two,
				Sampling: runtime.Sampling{Temperature: 1, TopP: 0.95}}
			carry := newAgent(t, cfg)
			cfg.Reprefill = true
			again := newAgent(t, cfg)
			a, err := carry.Run(context.Background(), qs, 2, 21)
			if err != nil {
				t.Fatal(err)
			}
			sa := carry.LastStats()
			b, err := again.Run(context.Background(), qs, 2, 21)
			if err != nil {
				t.Fatal(err)
			}
			sb := again.LastStats()
			wantCarried, wantAgain, turns := 0, 0, 0
			for i := range a {
				if fmt.Sprint(a[i].Tokens, a[i].Roles) != fmt.Sprint(b[i].Tokens, b[i].Roles) {
					t.Fatalf("row %d: carried and re-prefilled rollouts differ:\n%v\n%v", i, a[i].Tokens, b[i].Tokens)
				}
				for j := range a[i].LogProbs {
					if d := math.Abs(a[i].LogProbs[j] - b[i].LogProbs[j]); d > 1e-5 {
						t.Errorf("row %d position %d: log-prob carried %.8f, re-prefilled %.8f", i, j, a[i].LogProbs[j], b[i].LogProbs[j])
					}
				}
				// Observation tokens: those after the prompt the policy did
				// not write.
				gen := agent.Generated(a[i])
				obs := 0
				for p := a[i].PromptLen; p < len(gen); p++ {
					if !gen[p] {
						obs++
					}
				}
				wantCarried += a[i].PromptLen + obs + a[i].Turns - 1
				// Re-prefilling feeds the context as it stands at each turn.
				turn, start := 0, true
				for p := range gen {
					if gen[p] && start {
						wantAgain += p
						turn++
					}
					start = !gen[p]
				}
				turns += a[i].Turns
				if turn != a[i].Turns {
					t.Fatalf("row %d: %d runs of generated tokens for %d turns", i, turn, a[i].Turns)
				}
			}
			if turns <= len(a) {
				t.Fatalf("%d turns over %d rows: no rollout took a second turn", turns, len(a))
			}
			if sa.Prefill != wantCarried {
				t.Errorf("carried: %d tokens prefilled, want %d (prompts, observations, one per later turn)", sa.Prefill, wantCarried)
			}
			if sb.Prefill != wantAgain {
				t.Errorf("re-prefilled: %d tokens prefilled, want %d", sb.Prefill, wantAgain)
			}
			t.Logf("prefill: carried %d tokens, re-prefilled %d (%d rows, %d turns)", sa.Prefill, sb.Prefill, len(a), turns)
		})
	}
}
