package agent_test

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/models/prompt"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/retrieval/bm25"
	"github.com/dartc/dartc/retrieval/corpus"
	"github.com/dartc/dartc/router"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/runtime/agent"
	"github.com/dartc/dartc/safetensors"
	"github.com/dartc/dartc/trajectory"
)

// fixture is a compiled synthesized Qwen2 with the real 151936-id
// vocabulary (hidden 64, 2 layers, float32, KV cache), random non-zero
// adapters in a safetensors file, and a BM25 index of a few passages.
type fixture struct {
	root                   string // removed by TestMain
	model, adapters, index string
}

// TestMain removes the shared fixture once every test has run.
func TestMain(m *testing.M) {
	code := m.Run()
	if fix.root != "" {
		os.RemoveAll(fix.root)
	}
	os.Exit(code)
}

var (
	fixOnce sync.Once
	fix     fixture
	fixErr  error
)

var passages = []corpus.Row{
	{ID: "0", Contents: "\"Plum\"\nA plum is a fruit of the subgenus Prunus of the genus Prunus."},
	{ID: "1", Contents: "\"Paris\"\nParis is the capital and largest city of France."},
	{ID: "2", Contents: "\"Danube\"\nThe Danube is the second-longest river in Europe."},
	{ID: "3", Contents: "\"Plum pudding\"\nPlum pudding is a steamed pudding with dried fruit."},
}

type rows []corpus.Row

func (r *rows) Next() (corpus.Row, error) {
	if len(*r) == 0 {
		return corpus.Row{}, io.EOF
	}
	row := (*r)[0]
	*r = (*r)[1:]
	return row, nil
}

func setup(t testing.TB) fixture {
	t.Helper()
	orttest.Init(t)
	fixOnce.Do(func() { fix, fixErr = build() })
	if fixErr != nil {
		t.Fatal(fixErr)
	}
	return fix
}

func build() (fixture, error) {
	dir, err := os.MkdirTemp("", "dartc-agent-test-")
	if err != nil {
		return fixture{}, err
	}
	cfg, _ := qwen2.Preset("tiny")
	cfg.Vocab = 151936
	res, err := synth.Synthesize(cfg, filepath.Join(dir, "src"), synth.Options{KVCache: true, Seed: 5})
	if err != nil {
		return fixture{}, err
	}
	f := fixture{root: dir, model: filepath.Join(dir, "out"), adapters: filepath.Join(dir, "adapters.safetensors"), index: filepath.Join(dir, "passages.bm25")}
	m, err := compiler.Compile(res.ModelPath, f.model, compiler.Options{Rank: 4, Alpha: 8, Seed: 1, Graphs: []string{manifest.GraphDecode, manifest.GraphLogprobs}})
	if err != nil {
		return fixture{}, err
	}
	// Non-zero A and B in both roles, so reason and tool really differ.
	rng := rand.New(rand.NewPCG(7, 7))
	var ts []safetensors.Tensor
	for _, tg := range m.LoRA.Targets {
		for _, role := range m.LoRA.Roles {
			for _, ab := range []struct {
				name  string
				shape []int64
			}{{tg.A[role], []int64{tg.In, int64(m.LoRA.Rank)}}, {tg.B[role], []int64{int64(m.LoRA.Rank), tg.Out}}} {
				v := make([]float32, ab.shape[0]*ab.shape[1])
				for i := range v {
					v[i] = float32(rng.NormFloat64() * 0.2)
				}
				ts = append(ts, safetensors.FromFloat32(ab.name, ab.shape, v))
			}
		}
	}
	if err := safetensors.Write(f.adapters, ts, nil); err != nil {
		return fixture{}, err
	}
	src := rows(append([]corpus.Row(nil), passages...))
	if _, err := bm25.Build(context.Background(), &src, f.index, bm25.DefaultParams); err != nil {
		return fixture{}, err
	}
	return f, nil
}

func newAgent(t *testing.T, cfg agent.Config) *agent.Agent {
	t.Helper()
	f := setup(t)
	cfg.Model, cfg.Adapters = f.model, f.adapters
	if cfg.Session == nil {
		cfg.Session = &runtime.Options{IntraOpThreads: 1}
	}
	a, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// TestGreedyCacheEqualsRecomputation (issue 5, must-show 2): on the compiled
// model with random adapters and roles that change along the sequence,
// greedy decoding with the KV cache picks the same tokens as full
// recomputation, for a batch of prompts of different lengths.
func TestGreedyCacheEqualsRecomputation(t *testing.T) {
	a := newAgent(t, agent.Config{})
	prompts := [][]int64{
		a.PromptIDs("who wrote the book the origin of species"),
		{9707, 11, 1879},
		a.PromptIDs("plum?")[:40],
	}
	// Roles from the parity of the last token: both adapters in play.
	cfg := runtime.GenerateConfig{MaxNewTokens: 20, PadToken: 151643, Inputs: a.Adapters(),
		Roles: func(_ int, tokens []int64) int64 { return tokens[len(tokens)-1] % 2 }}
	cached, _, err := a.Decoder().Generate(context.Background(), prompts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.NoCache = true
	full, _, err := a.Decoder().Generate(context.Background(), prompts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	tool := 0
	for i := range prompts {
		if fmt.Sprint(cached[i].Tokens) != fmt.Sprint(full[i].Tokens) {
			t.Errorf("row %d: cached %v\n       full   %v", i, cached[i].Tokens, full[i].Tokens)
		}
		for j := range cached[i].LogProbs {
			if d := math.Abs(cached[i].LogProbs[j] - full[i].LogProbs[j]); d > 1e-4 {
				t.Errorf("row %d token %d: log-prob cached %g, full %g", i, j, cached[i].LogProbs[j], full[i].LogProbs[j])
			}
		}
		for _, r := range cached[i].Roles {
			tool += int(r)
		}
	}
	if tool == 0 {
		t.Fatal("no position had role tool: the test does not exercise both adapters")
	}
}

// checkTrajectory checks must-show 3 and 4 on one trajectory: the roles
// recorded during generation equal router.Roles on the finished sequence,
// and the sampled log-probs equal logprobs.onnx's within 1e-5.
func checkTrajectory(t *testing.T, a *agent.Agent, lp *runtime.Session, tr *trajectory.Trajectory) {
	t.Helper()
	if err := tr.Check(); err != nil {
		t.Fatal(err)
	}
	ids := make([]int, len(tr.Tokens))
	for i, id := range tr.Tokens {
		ids[i] = int(id)
	}
	want := router.Int64s(router.Roles(a.Tokenizer(), ids, agent.Generated(tr), router.SearchR1))
	if fmt.Sprint(want) != fmt.Sprint(tr.Roles) {
		t.Errorf("incremental roles differ from router.Roles on the finished sequence:\n got %v\nwant %v", tr.Roles, want)
	}
	n := int64(len(tr.Tokens))
	in := map[string]*runtime.Tensor{}
	for k, v := range a.Adapters() {
		in[k] = v
	}
	in["input_ids"], _ = runtime.FromInt64([]int64{1, n}, tr.Tokens)
	in["role_ids"], _ = runtime.FromInt64([]int64{1, n}, tr.Roles)
	mask, pos := make([]int64, n), make([]int64, n)
	for i := range n {
		mask[i], pos[i] = 1, i
	}
	in["attention_mask"], _ = runtime.FromInt64([]int64{1, n}, mask)
	in["position_ids"], _ = runtime.FromInt64([]int64{1, n}, pos)
	out, err := lp.Run(in, "logprobs")
	if err != nil {
		t.Fatal(err)
	}
	ref := out["logprobs"].Floats()
	checked := 0
	for i, p := range tr.Policy {
		if !p {
			if tr.LogProbs[i] != 0 {
				t.Errorf("position %d is not policy but has log-prob %g", i, tr.LogProbs[i])
			}
			continue
		}
		checked++
		if d := math.Abs(tr.LogProbs[i] - ref[i]); d > 1e-5 {
			t.Errorf("position %d (token %d): sampled log-prob %.8f, logprobs.onnx %.8f", i, tr.Tokens[i+1], tr.LogProbs[i], ref[i])
		}
	}
	if checked == 0 {
		t.Error("no policy token to check")
	}
}

func openLogprobs(t *testing.T) *runtime.Session {
	t.Helper()
	s, err := runtime.NewSession(filepath.Join(setup(t).model, "logprobs.onnx"), &runtime.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Destroy() })
	return s
}

// TestSampledRollouts (must-show 3 and 4): sampled rollouts at Search-R1's
// temperature and top-p, through invalid-action turns.
func TestSampledRollouts(t *testing.T) {
	idx, err := bm25.Open(setup(t).index)
	if err != nil {
		t.Fatal(err)
	}
	a := newAgent(t, agent.Config{Searcher: idx, MaxTurns: 1, MaxTurnTokens: 12,
		Sampling: runtime.Sampling{Temperature: 1, TopK: 50, TopP: 0.95}})
	qs := []agent.Question{{ID: "q1", Question: "what fruit is a plum"}, {ID: "q2", Question: "capital of France?"}}
	trs, err := a.Run(context.Background(), qs, 2, 11)
	if err != nil {
		t.Fatal(err)
	}
	if len(trs) != 4 || trs[2].ID != "q2" {
		t.Fatalf("got %d trajectories, third %q: want 4, question-major", len(trs), trs[2].ID)
	}
	lp := openLogprobs(t)
	for i, tr := range trs {
		t.Run(fmt.Sprint("row", i), func(t *testing.T) { checkTrajectory(t, a, lp, tr) })
		if tr.Turns != 2 || !strings.Contains(tr.Response, prompt.InvalidAction) {
			t.Errorf("row %d: %d turns, response %q: want 2 turns with the invalid-action message between", i, tr.Turns, tr.Response)
		}
	}
	// Same seed, same rollouts.
	rep, err := a.Run(context.Background(), qs, 2, 11)
	if err != nil {
		t.Fatal(err)
	}
	for i := range trs {
		if fmt.Sprint(rep[i].Tokens) != fmt.Sprint(trs[i].Tokens) {
			t.Errorf("row %d: a second run with the same seed differs", i)
		}
	}
}

// TestContextLimitPerRow: the context (Config.MaxContext) ends each row by
// itself, as doc.go's invariant requires (a rollout does not depend on
// which other rows are still generating). A long question with 4 tokens of
// room is batched with a short one: the short row's rollout must equal
// the one it makes alone. The turn's token budget used to be the smallest
// room left over the live rows, so the short row stopped after 4 tokens.
func TestContextLimitPerRow(t *testing.T) {
	short := agent.Question{ID: "short", Question: "what fruit is a plum"}
	long := agent.Question{ID: "long", Question: strings.Repeat("tell me about the danube river in europe ", 6)}
	probe := newAgent(t, agent.Config{})
	ctxLen := len(probe.PromptIDs(long.Question)) + 4
	a := newAgent(t, agent.Config{MaxTurns: 1, MaxTurnTokens: 20, MaxContext: ctxLen})
	alone, err := a.Run(context.Background(), []agent.Question{short}, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(alone[0].Tokens) - alone[0].PromptLen; n <= 4 {
		t.Fatalf("the short row alone wrote %d tokens: the test needs more than the long row's 4 of room", n)
	}
	both, err := a.Run(context.Background(), []agent.Question{short, long}, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(alone[0].Tokens) != fmt.Sprint(both[0].Tokens) || alone[0].Stop != both[0].Stop {
		t.Errorf("the short row changed when the long one joined the batch:\nalone   %q (%s)\nbatched %q (%s)", alone[0].Response, alone[0].Stop, both[0].Response, both[0].Stop)
	}
	if l := both[1]; l.Stop != agent.StopContext || len(l.Tokens) > ctxLen {
		t.Errorf("the long row: %d tokens, stop %q; want at most %d, stop %q", len(l.Tokens), l.Stop, ctxLen, agent.StopContext)
	}
}
