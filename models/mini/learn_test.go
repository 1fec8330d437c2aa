package mini

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/eval"
	"github.com/dartc/dartc/grpo"
	"github.com/dartc/dartc/retrieval/bm25"
	"github.com/dartc/dartc/retrieval/corpus"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/runtime/agent"
	"github.com/dartc/dartc/trajectory"
)

// The settings of the learning test: the demo's config (grpo-demo.yaml),
// fewer steps so that the test stays within a few minutes on two cores.
const (
	learnConfig = "grpo-demo.yaml"
	learnSteps  = 10
	heldOut     = 128 // validation questions, one greedy rollout each
)

func miniIndex(t testing.TB) *bm25.Index {
	t.Helper()
	f, err := os.Open("../../data/mini/corpus.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd, err := corpus.NewReader(f, corpus.TitleText)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "mini.bm25")
	if _, err := bm25.Build(context.Background(), rd, path, bm25.DefaultParams); err != nil {
		t.Fatal(err)
	}
	ix, err := bm25.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

type roller struct{ a *agent.Agent }

func (r roller) Rollout(ctx context.Context, ex []eval.Example, group int, adapters map[string]*runtime.Tensor, seed uint64) ([]*trajectory.Trajectory, error) {
	if err := r.a.SetAdapters(adapters); err != nil {
		return nil, err
	}
	return r.a.Run(ctx, questions(ex), group, seed)
}

func questions(ex []eval.Example) []agent.Question {
	qs := make([]agent.Question, len(ex))
	for i, e := range ex {
		qs[i] = agent.Question{ID: e.ID, Question: e.Question, Golden: e.Golden}
	}
	return qs
}

// binomUpper is P(X ≥ k) for X ~ Binomial(n, 1/2).
func binomUpper(k, n int) float64 {
	p := 0.0
	for i := k; i <= n; i++ {
		lg, _ := math.Lgamma(float64(n + 1))
		li, _ := math.Lgamma(float64(i + 1))
		lr, _ := math.Lgamma(float64(n - i + 1))
		p += math.Exp(lg - li - lr - float64(n)*math.Ln2)
	}
	return p
}

// GRPO with DART, from the compiled start (zero B: the base model), raises
// the EM reward on held-out questions beyond noise. Before and after
// training the same 128 validation questions are rolled out once each,
// greedily (as dartc eval does); the statistic is the one-sided exact sign test
// on the discordant pairs (McNemar): with b questions that only the
// trained policy gets right and c that only the base gets right, p =
// P(Binomial(b + c, 1/2) ≥ b), asserted below 0.01.
func TestDARTRaisesHeldOutReward(t *testing.T) {
	dir, _ := compileMini(t, []string{manifest.GraphDecode, manifest.GraphLogprobs, manifest.GraphTrain})
	cfg, err := grpo.LoadConfig(learnConfig)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Variant != grpo.VariantDual {
		t.Fatalf("%s: variant %s, want dual", learnConfig, cfg.Variant)
	}
	cfg.Steps = learnSteps
	ix := miniIndex(t)
	a, err := agent.New(agent.Config{Model: dir, Searcher: ix, TopK: cfg.TopK, MaxTurns: cfg.MaxTurns,
		MaxTurnTokens: cfg.MaxTurnTokens, MaxObsTokens: cfg.MaxObsTokens,
		Sampling: runtime.Sampling{Temperature: cfg.Temperature, TopP: cfg.TopP},
		Session:  &runtime.Options{IntraOpThreads: cfg.Threads}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	train, err := eval.Load("../../data/mini/train.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	val, err := eval.Load("../../data/mini/val.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	val = val[:heldOut]
	// Held-out rollouts are greedy, as dartc eval makes them: the EM
	// reward of the policy's likeliest answer.
	greedy, err := agent.New(agent.Config{Model: dir, Searcher: ix, TopK: cfg.TopK, MaxTurns: cfg.MaxTurns,
		MaxTurnTokens: cfg.MaxTurnTokens, MaxObsTokens: cfg.MaxObsTokens,
		Session: &runtime.Options{IntraOpThreads: cfg.Threads}})
	if err != nil {
		t.Fatal(err)
	}
	defer greedy.Close()
	score := func() []bool {
		trajs, err := greedy.Run(context.Background(), questions(val), 1, 99)
		if err != nil {
			t.Fatal(err)
		}
		right := make([]bool, len(trajs))
		for i, tj := range trajs {
			right[i] = grpo.EMReward(tj) == 1
		}
		return right
	}
	base := score()
	tr, err := grpo.New(grpo.Options{Model: dir, Run: t.TempDir(), Config: cfg, Data: train, Roller: roller{a},
		OnStep: func(m grpo.Metrics) { t.Logf("step %d: train reward %.3f", m.Step, m.RewardMean) }})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	trained, err := tr.Adapters()
	if err != nil {
		t.Fatal(err)
	}
	if err := greedy.SetAdapters(trained); err != nil {
		t.Fatal(err)
	}
	after := score()
	nb, na, b, c := 0, 0, 0, 0
	for i := range base {
		if base[i] {
			nb++
		}
		if after[i] {
			na++
		}
		switch {
		case after[i] && !base[i]:
			b++
		case base[i] && !after[i]:
			c++
		}
	}
	p := binomUpper(b, b+c)
	t.Logf("held-out EM reward over %d rollouts: base %.3f, after %d DART steps %.3f; discordant %d up / %d down, one-sided sign test p = %.2g",
		len(base), float64(nb)/float64(len(base)), learnSteps, float64(na)/float64(len(base)), b, c, p)
	if na <= nb || p >= 0.01 {
		t.Errorf("held-out reward %d → %d of %d (p = %.2g): no rise beyond noise", nb, na, len(base), p)
	}
}

// The sign test's tail is right: P(Bin(n, ½) ≥ k) against values computed
// by hand (C(10,k) summed over 2^10).
func TestBinomUpper(t *testing.T) {
	for _, c := range []struct {
		k, n int
		want float64
	}{{0, 10, 1}, {10, 10, 1.0 / 1024}, {9, 10, 11.0 / 1024}, {8, 10, 56.0 / 1024}, {5, 10, 638.0 / 1024}} {
		if got := binomUpper(c.k, c.n); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("P(Bin(%d,½) ≥ %d) = %g, want %g", c.n, c.k, got, c.want)
		}
	}
}
