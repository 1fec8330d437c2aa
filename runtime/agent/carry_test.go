package agent_test

import (
	"context"
	"fmt"
	"math"
	"testing"

	"github.com/dartc/dartc/compiler/manifest"
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

// TestResidentRolloutsMoveNoState: multi-turn sampled rollouts (dual and
// two-agent) with the adapters bound once on the CPU device and the KV
// cache kept there from step to step and turn to turn equal, bit for bit,
// those that feed the adapters and the cache as host tensors at every
// step; and while they run, only the small tensors cross between Go and
// ONNX Runtime: token ids, mask, positions, roles, the sampler's settings
// and uniforms in, the sampled tokens, log-probs and acceptance flags out.
// The same holds with adapters lent by another holder of the device (a
// trainer's, UseResidentAdapters).
func TestResidentRolloutsMoveNoState(t *testing.T) {
	idx, err := bm25.Open(setup(t).index)
	if err != nil {
		t.Fatal(err)
	}
	small := map[string]bool{"input_ids": true, "attention_mask": true, "position_ids": true}
	for _, n := range []string{manifest.SampleTemperatureInput, manifest.SampleTopKInput, manifest.SampleTopPInput, manifest.SampleUniformInput,
		manifest.SampleTokenOutput, manifest.SampleLogprobOutput, manifest.SampleAcceptedOutput} {
		small[n] = true
	}
	qs := []agent.Question{{ID: "q1", Question: "what fruit is a plum"}, {ID: "q2", Question: "capital of France?"}}
	for _, two := range []bool{false, true} {
		t.Run(fmt.Sprintf("two-agent=%v", two), func(t *testing.T) {
			cfg := agent.Config{Searcher: idx, MaxTurns: 2, MaxTurnTokens: 10, TwoAgent: two,
				Sampling: runtime.Sampling{Temperature: 1, TopP: 0.95}}
			resident := newAgent(t, cfg)
			cfg.HostTensors = true
			host := newAgent(t, cfg)
			if !resident.Decoder().Resident() || host.Decoder().Resident() {
				t.Fatal("the agents do not run the paths compared")
			}
			small[resident.Decoder().Spec().RoleInput] = true
			runtime.ResetTransferStats()
			a, err := resident.Run(context.Background(), qs, 2, 21)
			if err != nil {
				t.Fatal(err)
			}
			moved := runtime.TransferStats()
			sa := resident.LastStats()
			runtime.ResetTransferStats()
			b, err := host.Run(context.Background(), qs, 2, 21)
			if err != nil {
				t.Fatal(err)
			}
			hostMoved := runtime.TransferStats()
			// Adapters lent from another Device value on the same device.
			dev, err := runtime.OpenDevice(nil)
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			lent := map[string]*runtime.DeviceTensor{}
			for n, h := range resident.Adapters() {
				if lent[n], err = dev.UploadTensor(n, h); err != nil {
					t.Fatal(err)
				}
				defer lent[n].Destroy()
			}
			if err := resident.UseResidentAdapters(lent); err != nil {
				t.Fatal(err)
			}
			runtime.ResetTransferStats()
			c, err := resident.Run(context.Background(), qs, 2, 21)
			if err != nil {
				t.Fatal(err)
			}
			for name, n := range runtime.TransferStats().ByName {
				if !small[name] {
					t.Errorf("rollouts with lent adapters moved %d bytes of %s between Go and ONNX Runtime", n, name)
				}
			}
			turns := 0
			for i := range a {
				if fmt.Sprint(a[i].Tokens, a[i].LogProbs) != fmt.Sprint(c[i].Tokens, c[i].LogProbs) {
					t.Fatalf("row %d: rollouts with lent adapters differ from those with the agent's own", i)
				}
				if fmt.Sprint(a[i].Tokens, a[i].Roles) != fmt.Sprint(b[i].Tokens, b[i].Roles) {
					t.Fatalf("row %d: resident and host rollouts differ:\n%v\n%v", i, a[i].Tokens, b[i].Tokens)
				}
				for j := range a[i].LogProbs {
					if a[i].LogProbs[j] != b[i].LogProbs[j] {
						t.Errorf("row %d position %d: log-prob resident %.9g, host %.9g", i, j, a[i].LogProbs[j], b[i].LogProbs[j])
					}
				}
				turns += a[i].Turns
			}
			if turns <= len(a) {
				t.Fatalf("%d turns over %d rows: no rollout took a second turn", turns, len(a))
			}
			for name, n := range moved.ByName {
				if !small[name] {
					t.Errorf("resident rollouts moved %d bytes of %s between Go and ONNX Runtime", n, name)
				}
			}
			state := int64(0) // adapters and cache
			for name, n := range hostMoved.ByName {
				if !small[name] && name != "logits" {
					state += n
				}
			}
			if state == 0 {
				t.Fatal("the host rollouts moved no adapter or cache bytes: the counters see nothing")
			}
			runs := int64(sa.Decode.Steps + sa.Decode.Redraws)
			if two {
				runs *= 2
			}
			t.Logf("%d turns, %d graph runs: bytes crossing per run resident %d, host %d (adapters and cache %d, unread logits %d)",
				turns, runs, (moved.ToORT+moved.FromORT)/runs, (hostMoved.ToORT+hostMoved.FromORT)/runs, state/runs, hostMoved.ByName["logits"]/runs)
		})
	}
}
