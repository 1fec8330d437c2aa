package agent_test

import (
	"context"
	"math"
	"testing"

	"github.com/dartc/dartc/models/tokenizer"
	"github.com/dartc/dartc/retrieval/bm25"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/runtime/agent"
	"github.com/dartc/dartc/trajectory"
)

// roleLogprobs runs logprobs.onnx on a trajectory with one role fed at
// every position: what that role's agent, encoding the whole context with
// its own adapter, assigns to each next token.
func roleLogprobs(t *testing.T, a *agent.Agent, lp *runtime.Session, tr *trajectory.Trajectory, role int64) []float64 {
	t.Helper()
	n := int64(len(tr.Tokens))
	in := map[string]*runtime.Tensor{}
	for k, v := range a.Adapters() {
		in[k] = v
	}
	roles, mask, pos := make([]int64, n), make([]int64, n), make([]int64, n)
	for i := range n {
		roles[i], mask[i], pos[i] = role, 1, i
	}
	in["input_ids"], _ = runtime.FromInt64([]int64{1, n}, tr.Tokens)
	in["role_ids"], _ = runtime.FromInt64([]int64{1, n}, roles)
	in["attention_mask"], _ = runtime.FromInt64([]int64{1, n}, mask)
	in["position_ids"], _ = runtime.FromInt64([]int64{1, n}, pos)
	out, err := lp.Run(in, "logprobs")
	if err != nil {
		t.Fatal(err)
	}
	return out["logprobs"].Floats()
}

// TestTwoAgentSampling: with TwoAgent each token's log-prob is that of the
// agent of its role, which encodes the whole context with its own adapter
// (the trainer's two-agent objective recomputes exactly this), and it
// differs from the dual model's at tool positions.
func TestTwoAgentSampling(t *testing.T) {
	f := setup(t)
	idx, err := bm25.Open(f.index)
	if err != nil {
		t.Fatal(err)
	}
	lp := openLogprobs(t)
	tok, _ := tokenizer.Load(mustDefaultDir(t))
	run := func(two bool) *trajectory.Trajectory {
		sc := &script{tok: tok, eos: 151645, state: map[int]*scriptRow{}, turns: []string{
			"<think> I need the fruit. </think>\n<search> plum fruit </search>\n\n",
			"<answer> a plum </answer>",
		}}
		a := newAgent(t, agent.Config{Searcher: idx, TopK: 2, Force: sc.force, TwoAgent: two})
		trs, err := a.Run(context.Background(), []agent.Question{{ID: "p", Question: "what is a plum"}}, 1, 3)
		if err != nil {
			t.Fatal(err)
		}
		if err := trs[0].Check(); err != nil {
			t.Fatal(err)
		}
		return trs[0]
	}
	two, dual := run(true), run(false)
	a := newAgent(t, agent.Config{})
	reason, tool := roleLogprobs(t, a, lp, two, 0), roleLogprobs(t, a, lp, two, 1)
	tools, differs := 0, false
	for i, p := range two.Policy {
		if !p {
			continue
		}
		want := reason[i]
		if two.Roles[i] == 1 {
			want = tool[i]
			tools++
			if math.Abs(two.LogProbs[i]-dual.LogProbs[i]) > 1e-4 {
				differs = true
			}
		}
		if d := math.Abs(two.LogProbs[i] - want); d > 1e-5 {
			t.Fatalf("position %d (role %d): two-agent log-prob %.7f, its agent's logprobs.onnx %.7f", i, two.Roles[i], two.LogProbs[i], want)
		}
	}
	if tools == 0 {
		t.Fatal("the scripted rollout has no tool position")
	}
	if !differs {
		t.Error("two-agent and dual log-probs agree at every tool position: the agents were not separate")
	}
}
