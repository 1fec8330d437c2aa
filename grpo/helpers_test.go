package grpo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/eval"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/trajectory"
)

// toyConfig is a Qwen2-shaped model small enough to train in seconds: a
// 32-token vocabulary, one layer.
var toyConfig = qwen2.Config{Name: "toy", Layers: 1, Hidden: 32, Heads: 2, KVHeads: 1, HeadDim: 16,
	Intermediate: 64, Vocab: 32, RopeTheta: 1e4, RMSEps: 1e-6, TiedEmbed: true, QKVBias: true, MaxPositions: 256}

var (
	toyOnce    sync.Once
	toyDir     string
	toyWeights map[string][]float64 // the synthesized weights, for float64 references
	toyErr     error
)

// toyModel synthesizes and compiles the toy model once per test binary
// (float32, KV cache, rank 4).
func toyModel(t testing.TB) string {
	t.Helper()
	orttest.Init(t)
	toyOnce.Do(func() {
		root, err := os.MkdirTemp("", "grpo-toy-")
		if err != nil {
			toyErr = err
			return
		}
		res, err := synth.Synthesize(toyConfig, filepath.Join(root, "src"), synth.Options{KVCache: true, Seed: 7})
		if err != nil {
			toyErr = err
			return
		}
		toyDir, toyWeights = filepath.Join(root, "compiled"), res.Weights
		_, toyErr = compiler.Compile(res.ModelPath, toyDir, compiler.Options{Rank: 4, Alpha: 8, Seed: 3})
	})
	if toyErr != nil {
		t.Fatal(toyErr)
	}
	return toyDir
}

func TestMain(m *testing.M) {
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(checkpointChild(dir))
	}
	code := m.Run()
	if toyDir != "" {
		os.RemoveAll(filepath.Dir(toyDir))
	}
	os.Exit(code)
}

// toyRoller samples continuations from decode.onnx with the adapters it is
// given: the real policy on real ONNX Runtime, without tools. Each prompt
// is a few ids derived from the example; the role of a position is tool
// when its token is below 8, so dual runs see both roles.
type toyRoller struct {
	dec    *runtime.Decoder
	newTok int
	// corrupt, when set, may alter a step's trajectories (fault injection).
	corrupt func(call int, trajs []*trajectory.Trajectory)
	calls   int
	last    []*trajectory.Trajectory // the latest call's rollouts
}

func newToyRoller(t testing.TB, dir string, newTokens int) *toyRoller {
	t.Helper()
	dec, err := runtime.NewDecoderFromManifest(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dec.Destroy() })
	return &toyRoller{dec: dec, newTok: newTokens}
}

// toyStops end a rollout early, so that lengths differ within a group.
var toyStops = []int64{29, 30, 31}

func toyRole(tokens []int64) int64 {
	if tokens[len(tokens)-1] < 8 {
		return RoleTool
	}
	return RoleReason
}

func toyPrompt(ex eval.Example) []int64 {
	h := int64(0)
	for _, c := range ex.Question {
		h = (h*31 + int64(c)) % 1000003
	}
	return []int64{1, 2 + h%30, 2 + (h/30)%30}
}

func (r *toyRoller) Rollout(ctx context.Context, examples []eval.Example, group int, adapters map[string]*runtime.Tensor, seed uint64) ([]*trajectory.Trajectory, error) {
	var prompts [][]int64
	for _, ex := range examples {
		for range group {
			prompts = append(prompts, toyPrompt(ex))
		}
	}
	seqs, _, err := r.dec.Generate(ctx, prompts, runtime.GenerateConfig{
		MaxNewTokens: r.newTok, StopTokens: toyStops, Sampling: runtime.Sampling{Temperature: 1}, Seed: seed,
		Inputs: adapters, Roles: func(_ int, tokens []int64) int64 { return toyRole(tokens) },
	})
	if err != nil {
		return nil, err
	}
	out := make([]*trajectory.Trajectory, len(seqs))
	for i, s := range seqs {
		ex := examples[i/group]
		P := len(s.Prompt)
		stop := "max_tokens"
		if s.Stop == runtime.StopToken {
			stop = "eos"
		}
		tj := &trajectory.Trajectory{ID: ex.ID, Question: ex.Question, Golden: ex.Golden, PromptLen: P,
			Tokens: append(append([]int64(nil), s.Prompt...), s.Tokens...), Stop: stop, Turns: 1}
		n := len(tj.Tokens)
		tj.Roles = append(append([]int64(nil), s.Roles...), 0)
		tj.Policy = make([]bool, n)
		tj.LogProbs = make([]float64, n)
		for k, lp := range s.LogProbs {
			tj.Policy[P-1+k] = true
			tj.LogProbs[P-1+k] = lp
		}
		out[i] = tj
	}
	r.calls++
	r.last = out
	if r.corrupt != nil {
		r.corrupt(r.calls, out)
	}
	return out, nil
}

// lowTokenReward is the toy task: the fraction of sampled tokens below 8.
func lowTokenReward(t *trajectory.Trajectory) float64 {
	n, low := 0, 0
	for _, tok := range t.Tokens[t.PromptLen:] {
		n++
		if tok < 8 {
			low++
		}
	}
	if n == 0 {
		return 0
	}
	return float64(low) / float64(n)
}

func toyData(n int) []eval.Example {
	ex := make([]eval.Example, n)
	for i := range ex {
		ex[i] = eval.Example{ID: fmt.Sprint(i), Question: fmt.Sprintf("question %d", i), Golden: []string{"x"}}
	}
	return ex
}

func toyTrainConfig() Config {
	c := DefaultConfig()
	c.Steps, c.Prompts, c.Group, c.MicroBatch = 4, 3, 4, 4
	c.LR, c.WarmupRatio, c.Threads = 2e-2, 0, 1
	c.CheckpointEvery = 0
	c.EntropyCoeff = 0 // the tests' reference losses have no entropy term
	return c
}

// staleOldLogprobs lowers every sampled token's old log-prob by nats (stale
// or corrupted ones): ratios of e^nats, finite losses whose gradients
// overflow float32's Σ g² at 60.
func staleOldLogprobs(nats float64) func(int, []*trajectory.Trajectory) {
	return func(_ int, trajs []*trajectory.Trajectory) {
		for _, tj := range trajs {
			for p := range tj.Tokens {
				if tj.Policy[p] {
					tj.LogProbs[p] -= nats
				}
			}
		}
	}
}
