package gradanglerun_test

import (
	"context"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dartc/dartc/eval/gradanglerun"
	"github.com/dartc/dartc/eval/run/runtest"
	"github.com/dartc/dartc/models/tokenizer"
	"github.com/dartc/dartc/retrieval/connect"
	"github.com/dartc/dartc/retrieval/httpretrieve"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/runtime/agent"
	"github.com/dartc/dartc/trajectory"
)

func TestMain(m *testing.M) {
	code := m.Run()
	runtest.Cleanup()
	os.Exit(code)
}

// script makes every row write turns[i] in its i-th turn, then EOS; a turn
// starts where the row's length jumped (an observation came in).
type script struct {
	turns [][]int
	eos   int64
	rows  map[int]*[3]int // last length, turn, position
}

func (s *script) force(row int, tokens []int64) (int64, bool) {
	st := s.rows[row]
	if st == nil {
		st = &[3]int{-2, -1, 0}
		s.rows[row] = st
	}
	if len(tokens) != st[0]+1 {
		st[1], st[2] = st[1]+1, 0
	} else {
		st[2]++
	}
	st[0] = len(tokens)
	if st[1] < len(s.turns) && st[2] < len(s.turns[st[1]]) {
		return int64(s.turns[st[1]][st[2]]), true
	}
	return s.eos, true
}

func newScript(t *testing.T, turns ...string) *script {
	dir, err := tokenizer.DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := &script{eos: int64(tok.EOSIDs()[0]), rows: map[int]*[3]int{}}
	for _, x := range turns {
		s.turns = append(s.turns, tok.Encode(x))
	}
	return s
}

// TestGradientsAndAngles: rollouts that think, search and answer give a
// reasoning and a tool gradient per sample; each is checked against a
// central difference of Σ w·logp from logprobs.onnx along a random
// direction of the shared adapter (the gradient is −∇Σ w·logp, doc.go),
// and the report has every angle in [0°, 180°].
func TestGradientsAndAngles(t *testing.T) {
	f := runtest.Get(t)
	s, err := connect.Open(f.Index, httpretrieve.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sc := newScript(t, "<think> plums are fruit </think>\n<search> plum pudding </search>", "<think> so </think>\n<answer> a fruit </answer>")
	dir := t.TempDir()
	cfg := agent.Config{Model: f.Model, Adapters: f.Adapters["unified"], Searcher: s, Session: &runtime.Options{IntraOpThreads: 1},
		MaxTurns: 1, MaxTurnTokens: 40, Sampling: runtime.Sampling{Temperature: 1, TopK: 20}, Force: sc.force}
	rep, err := gradanglerun.Run(context.Background(), gradanglerun.Options{Agent: cfg,
		Datasets: []string{filepath.Join(f.Data, "nq_test.jsonl")}, Limit: 1, Group: 2, Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Samples) != 2 {
		t.Fatalf("%d samples, want 2", len(rep.Samples))
	}
	for _, i := range rep.Info {
		if i.ReasonTokens == 0 || i.ToolTokens == 0 || i.ReasonNorm == 0 || i.ToolNorm == 0 {
			t.Fatalf("sample %+v: want both kinds of tokens and non-zero gradients", i)
		}
		if i.MaxRatioDev > 1e-3 {
			t.Errorf("sample %s: ratio off 1 by %g: old log-probs are not the policy's", i.ID, i.MaxRatioDev)
		}
	}
	a := rep.Angles
	if len(a.ReasonTool) != 2 || len(a.ReasonReason) != 1 || len(a.ToolTool) != 1 {
		t.Fatalf("angles: %d reason–tool, %d reason–reason, %d tool–tool", len(a.ReasonTool), len(a.ReasonReason), len(a.ToolTool))
	}
	for _, x := range append(append(append([]float64{}, a.ReasonTool...), a.ReasonReason...), a.ToolTool...) {
		if !(x >= 0 && x <= 180) {
			t.Fatalf("angle %v outside [0, 180]", x)
		}
	}
	t.Logf("reason–tool angles %v", a.ReasonTool)
	for _, name := range []string{gradanglerun.SamplesFile, gradanglerun.AnglesFile, gradanglerun.SummaryFile, gradanglerun.HistogramFile} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}

	// The finite-difference check, on one scripted rollout.
	ag, err := agent.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ag.Close()
	sc.rows = map[int]*[3]int{}
	trs, err := ag.Run(context.Background(), []agent.Question{{ID: "q", Question: "what is a plum"}}, 1, 3)
	if err != nil {
		t.Fatal(err)
	}
	// Shared adapter: the reason slot in both slots, as Run does.
	shared := ag.Adapters()
	for _, tg := range f.Manifest.LoRA.Targets {
		shared[tg.A["tool"]], shared[tg.B["tool"]] = shared[tg.A["reason"]], shared[tg.B["reason"]]
	}
	g, err := gradanglerun.NewGrads(f.Model, shared, &runtime.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	lp, err := runtime.NewSession(filepath.Join(f.Model, f.Manifest.Graphs["logprobs"].File), &runtime.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer lp.Destroy()
	for _, kind := range []int64{gradanglerun.KindReason, gradanglerun.KindTool} {
		grad, n, _, err := g.Gradient(trs[0], kind)
		if err != nil || n == 0 {
			t.Fatalf("kind %d: %d tokens, %v", kind, n, err)
		}
		fd, analytic := directional(t, lp, f, shared, trs[0], kind, grad)
		t.Logf("kind %d (%d tokens): central difference %.6g, −⟨grad, v⟩ %.6g", kind, n, fd, analytic)
		if math.Abs(fd-analytic) > 0.02*math.Abs(analytic)+1e-3 {
			t.Errorf("kind %d: central difference %.6g but the gradient gives %.6g", kind, fd, analytic)
		}
	}
}

// directional returns the central difference of Σ_t w_t·logp_t along a
// random direction v of the reason-slot tensors (all roles 0, as train.onnx
// runs), and −⟨grad, v⟩ with grad flattened as gradangle.Flatten does.
func directional(t *testing.T, lp *runtime.Session, f runtest.Fixture, adapters map[string]*runtime.Tensor, tr *trajectory.Trajectory, kind int64, grad []float32) (fd, analytic float64) {
	t.Helper()
	rng := rand.New(rand.NewPCG(4, 4))
	dir := map[string][]float64{}
	var names []string
	for _, tg := range f.Manifest.LoRA.Targets {
		names = append(names, tg.A["reason"], tg.B["reason"])
	}
	for _, n := range names {
		v := make([]float64, adapters[n].Len())
		for i := range v {
			v[i] = rng.NormFloat64()
		}
		dir[n] = v
	}
	// Flatten's order: tensors sorted by name.
	sorted := append([]string(nil), names...)
	for i := range sorted {
		for j := i + 1; j < len(sorted); j++ {
			if sorted[j] < sorted[i] {
				sorted[i], sorted[j] = sorted[j], sorted[i]
			}
		}
	}
	off := 0
	for _, n := range sorted {
		for _, x := range dir[n] {
			analytic -= float64(grad[off]) * x
			off++
		}
	}
	S := int64(len(tr.Tokens))
	objective := func(eps float64) float64 {
		in := map[string]*runtime.Tensor{}
		for k, v := range adapters {
			in[k] = v
		}
		for _, n := range names {
			base := adapters[n].Float32()
			moved := make([]float32, len(base))
			for i := range base {
				moved[i] = base[i] + float32(eps*dir[n][i])
			}
			in[n], _ = runtime.FromFloat32(adapters[n].Shape(), moved)
		}
		ones, pos, zeros := make([]int64, S), make([]int64, S), make([]int64, S)
		for i := range S {
			ones[i], pos[i] = 1, i
		}
		in["input_ids"], _ = runtime.FromInt64([]int64{1, S}, tr.Tokens)
		in["attention_mask"], _ = runtime.FromInt64([]int64{1, S}, ones)
		in["position_ids"], _ = runtime.FromInt64([]int64{1, S}, pos)
		in[f.Manifest.LoRA.RoleInput], _ = runtime.FromInt64([]int64{1, S}, zeros)
		out, err := lp.Run(in, "logprobs")
		if err != nil {
			t.Fatal(err)
		}
		l := out["logprobs"].Floats()
		sum := 0.0
		for i := range tr.Tokens {
			if tr.Policy[i] && tr.Roles[i] == kind {
				sum += l[i]
			}
		}
		return sum
	}
	const eps = 1e-3
	return (objective(eps) - objective(-eps)) / (2 * eps), analytic
}

// TestRunResumesPerBatch: a gradient-angle run stopped after some batches
// (its context cancelled mid-run) keeps their gradients; rerun, it
// computes only the rest and gives the angles of an uninterrupted run.
// Other settings on the partial directory are refused; the partial
// gradients are removed once the report is written.
func TestRunResumesPerBatch(t *testing.T) {
	f := runtest.Get(t)
	s, err := connect.Open(f.Index, httpretrieve.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	opts := func(dir string, stream func(int, []byte)) gradanglerun.Options {
		return gradanglerun.Options{Agent: agent.Config{Model: f.Model, Adapters: f.Adapters["unified"], Searcher: s,
			Session: &runtime.Options{IntraOpThreads: 1}, Stream: stream, MaxTurns: 1, MaxTurnTokens: 6,
			Sampling: runtime.Sampling{Temperature: 1, TopK: 20}},
			Datasets: []string{filepath.Join(f.Data, "nq_test.jsonl")}, Limit: 4, Group: 2, Batch: 1, Seed: 5, Dir: dir}
	}
	tokens := 0
	straight, err := gradanglerun.Run(context.Background(), opts(t.TempDir(), func(int, []byte) { tokens++ }))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	seen := 0
	if _, err := gradanglerun.Run(ctx, opts(dir, func(int, []byte) {
		if seen++; seen == tokens*3/4 {
			cancel()
		}
	})); err == nil {
		t.Fatal("the cancelled run succeeded")
	}
	o := opts(dir, nil)
	o.Seed = 6
	if _, err := gradanglerun.Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "seed") {
		t.Errorf("resuming with another seed: %v", err)
	}
	resumed, err := gradanglerun.Run(context.Background(), opts(dir, nil))
	if err != nil {
		t.Fatal(err)
	}
	if resumed.Resumed == 0 || resumed.Resumed >= 8 {
		t.Errorf("resumed %d of 8 samples", resumed.Resumed)
	}
	if len(straight.Samples) != len(resumed.Samples) {
		t.Fatalf("%d samples straight, %d resumed", len(straight.Samples), len(resumed.Samples))
	}
	for i := range straight.Samples {
		a, b := straight.Samples[i], resumed.Samples[i]
		if a.ID != b.ID || !slices.Equal(a.Reason, b.Reason) || !slices.Equal(a.Tool, b.Tool) {
			t.Errorf("sample %d (%s) differs after resuming", i, a.ID)
		}
	}
	if !slices.Equal(straight.Angles.ReasonTool, resumed.Angles.ReasonTool) || !slices.Equal(straight.Angles.ReasonReason, resumed.Angles.ReasonReason) {
		t.Error("the angles differ after resuming")
	}
	if _, err := os.Stat(filepath.Join(dir, gradanglerun.PartialDir)); !os.IsNotExist(err) {
		t.Errorf("the partial gradients were left: %v", err)
	}
}

// TestRunWritesAndDeletesOnlyItsOwn: gradangle writes only into a new or
// empty directory or one it wrote. A folder of the user's with a
// partial/ of theirs is refused and left as it was; in its own directory,
// finishing deletes only the files it put in partial/, and partial/ only
// if that empties it. A row of the wrong kind in partial/samples.jsonl is
// named by its field and line, not in Go's terms.
func TestRunWritesAndDeletesOnlyItsOwn(t *testing.T) {
	f := runtest.Get(t)
	opts := func(dir string) gradanglerun.Options {
		return gradanglerun.Options{Agent: agent.Config{Model: f.Model, Adapters: f.Adapters["unified"],
			Session: &runtime.Options{IntraOpThreads: 1}, MaxTurns: 1, MaxTurnTokens: 3,
			Sampling: runtime.Sampling{Temperature: 1, TopK: 20}},
			Datasets: []string{filepath.Join(f.Data, "nq_test.jsonl")}, Limit: 1, Dir: dir}
	}
	proj := t.TempDir()
	chapter, summary := filepath.Join(proj, gradanglerun.PartialDir, "chapter1.tex"), filepath.Join(proj, gradanglerun.SummaryFile)
	os.Mkdir(filepath.Dir(chapter), 0o755)
	os.WriteFile(chapter, []byte("draft\n"), 0o644)
	os.WriteFile(summary, []byte("mine\n"), 0o644)
	if _, err := gradanglerun.Run(context.Background(), opts(proj)); err == nil || !strings.Contains(err.Error(), "refusing to write into "+proj) {
		t.Errorf("a folder of the user's: %v", err)
	}
	for p, want := range map[string]string{chapter: "draft\n", summary: "mine\n"} {
		if b, err := os.ReadFile(p); err != nil || string(b) != want {
			t.Errorf("%s: %q (%v), want the user's %q", p, b, err, want)
		}
	}

	dir := t.TempDir()
	if _, err := gradanglerun.Run(context.Background(), opts(dir)); err != nil {
		t.Fatal(err)
	}
	notes := filepath.Join(dir, gradanglerun.PartialDir, "notes.txt")
	os.Mkdir(filepath.Dir(notes), 0o755)
	os.WriteFile(notes, []byte("keep me\n"), 0o644)
	if _, err := gradanglerun.Run(context.Background(), opts(dir)); err != nil {
		t.Fatalf("rerun in its own directory: %v", err)
	}
	entries, err := os.ReadDir(filepath.Dir(notes))
	if err != nil || len(entries) != 1 || entries[0].Name() != "notes.txt" {
		t.Errorf("partial/ holds %v (%v), want only the user's notes.txt", entries, err)
	}

	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "settings.json"), []byte(`{"command": "gradangle"}`), 0o644)
	os.Mkdir(filepath.Join(bad, gradanglerun.PartialDir), 0o755)
	os.WriteFile(filepath.Join(bad, gradanglerun.PartialDir, gradanglerun.SamplesFile), []byte(`{"id": "nq/test_0", "batch": "0"}`+"\n"), 0o644)
	_, err = gradanglerun.Run(context.Background(), opts(bad))
	if err == nil || !strings.Contains(err.Error(), `samples.jsonl:1: field "batch" is a string, want a whole number`) || strings.Contains(err.Error(), "Go ") {
		t.Errorf("a string batch in samples.jsonl: %v", err)
	}
}
