package leasrun_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/eval/leas"
	"github.com/dartc/dartc/eval/leasrun"
	"github.com/dartc/dartc/eval/run/runtest"
	"github.com/dartc/dartc/grpo"
	"github.com/dartc/dartc/retrieval/connect"
	"github.com/dartc/dartc/retrieval/httpretrieve"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/runtime/agent"
	"github.com/dartc/dartc/safetensors"
)

func TestMain(m *testing.M) {
	code := m.Run()
	runtest.Cleanup()
	os.Exit(code)
}

// TestRunSixConfigurations runs LEAS end to end on the compiled tiny Qwen2
// with sampled rollouts. With one adapter file standing for M_Reas, M_Tool
// and M_Unified, those three configurations get identical tensors and so,
// sharing random numbers, identical rollouts; M_Base (zeros) must differ
// from them somewhere. The report files are all written.
func TestRunSixConfigurations(t *testing.T) {
	f := runtest.Get(t)
	s, err := connect.Open(f.Index, httpretrieve.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// The same tensors under the three kinds of training metadata.
	same := map[leas.Config]string{}
	src, err := safetensors.Read(f.Adapters["unified"])
	if err != nil {
		t.Fatal(err)
	}
	for c, g := range map[leas.Config]string{leas.Reas: grpo.GradReason, leas.Tool: grpo.GradTool, leas.Unified: grpo.GradAll} {
		meta := map[string]string{}
		for k, v := range src.Metadata {
			meta[k] = v
		}
		meta[grpo.MetaGradTokens] = g
		same[c] = filepath.Join(t.TempDir(), c.String()+".safetensors")
		if err := safetensors.Write(same[c], src.Tensors, meta); err != nil {
			t.Fatal(err)
		}
	}
	const k = 3
	rep, err := leasrun.Run(context.Background(), leasrun.Options{
		Agent: agent.Config{Model: f.Model, Searcher: s, Session: &runtime.Options{IntraOpThreads: 1},
			MaxTurns: 1, MaxTurnTokens: 6, Sampling: runtime.Sampling{Temperature: 1, TopK: 20}}, // top-k: no sort of the random model's flat vocabulary
		Trained:  same,
		Datasets: []string{filepath.Join(f.Data, "nq_test.jsonl")}, Limit: 3, K: k, Batch: 2, Seed: 9, Dir: dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Rollouts) != int(leas.NumConfigs)*3*k || len(rep.Results) != 3 || rep.Summary.Questions != 3 {
		t.Fatalf("%d rollouts, %d results, summary of %d questions", len(rep.Rollouts), len(rep.Results), rep.Summary.Questions)
	}
	by := map[string]map[string]string{} // config → id/sample → fingerprint
	for _, r := range rep.Rollouts {
		if by[r.Config] == nil {
			by[r.Config] = map[string]string{}
		}
		by[r.Config][r.ID+"/"+string(rune('0'+r.Sample))] = r.Fingerprint
	}
	differs := false
	for key, fp := range by["M_Unified"] {
		if by["M_Reas"][key] != fp || by["M_Tool"][key] != fp {
			t.Errorf("%s: M_Reas, M_Tool, M_Unified share tensors and seeds but rolled out differently", key)
		}
		if by["M_Base"][key] != fp {
			differs = true
		}
	}
	if !differs {
		t.Error("M_Base (zero adapters) rolled out exactly as M_Unified: adapters were not switched")
	}
	for _, q := range rep.Questions {
		for m, c := range q.Correct {
			if c < 0 || c > k {
				t.Errorf("%s %v: %d correct of %d", q.ID, leas.Config(m), c, k)
			}
		}
	}
	for _, name := range []string{leasrun.RolloutsFile, leasrun.QuestionsFile, leasrun.ResultsFile, leasrun.SummaryFile, leasrun.HistogramFile} {
		if st, err := os.Stat(filepath.Join(dir, name)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	qs, err := leas.ReadQuestions(filepath.Join(dir, leasrun.QuestionsFile))
	if err != nil || len(qs) != 3 || qs[0].Correct != rep.Questions[0].Correct {
		t.Errorf("questions.jsonl does not read back: %v", err)
	}
}

func TestRunNeedsThreeAdapters(t *testing.T) {
	_, err := leasrun.Run(context.Background(), leasrun.Options{Dir: t.TempDir(), Trained: map[leas.Config]string{leas.Reas: "x"}})
	if err == nil {
		t.Fatal("no error without M_Tool and M_Unified")
	}
}

// TestRunResumesPerBatch: a LEAS run stopped late (its context cancelled
// in the middle of the configurations) keeps the batches it finished;
// rerun, it rolls out only the rest and ends with the same counts and
// rollouts as an uninterrupted run. Other settings on the partial
// directory are refused.
func TestRunResumesPerBatch(t *testing.T) {
	f := runtest.Get(t)
	s, err := connect.Open(f.Index, httpretrieve.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	trained := map[leas.Config]string{leas.Reas: f.Adapters["reason"], leas.Tool: f.Adapters["tool"], leas.Unified: f.Adapters["unified"]}
	opts := func(dir string, stream func(int, []byte)) leasrun.Options {
		return leasrun.Options{
			Agent: agent.Config{Model: f.Model, Searcher: s, Session: &runtime.Options{IntraOpThreads: 1}, Stream: stream,
				MaxTurns: 1, MaxTurnTokens: 6, Sampling: runtime.Sampling{Temperature: 1, TopK: 20}},
			Trained:  trained,
			Datasets: []string{filepath.Join(f.Data, "nq_test.jsonl")}, Limit: 3, K: 2, Batch: 2, Seed: 4, Dir: dir,
		}
	}
	tokens := 0
	straight, err := leasrun.Run(context.Background(), opts(t.TempDir(), func(int, []byte) { tokens++ }))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	seen := 0
	_, err = leasrun.Run(ctx, opts(dir, func(int, []byte) {
		if seen++; seen == tokens*2/3 {
			cancel()
		}
	}))
	if err == nil {
		t.Fatal("the cancelled run succeeded")
	}
	partial, err := os.ReadFile(filepath.Join(dir, leasrun.RolloutsFile))
	if err != nil || len(partial) == 0 {
		t.Fatalf("nothing kept of the stopped run: %v", err)
	}
	o := opts(dir, nil)
	o.K = 3
	if _, err := leasrun.Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "k:") {
		t.Errorf("resuming with another k: %v", err)
	}
	resumed, err := leasrun.Run(context.Background(), opts(dir, nil))
	if err != nil {
		t.Fatal(err)
	}
	if resumed.Resumed == 0 || resumed.Resumed >= int(leas.NumConfigs)*3 {
		t.Errorf("resumed %d of %d (configuration, question) pairs", resumed.Resumed, int(leas.NumConfigs)*3)
	}
	for i := range straight.Questions {
		if straight.Questions[i] != resumed.Questions[i] {
			t.Errorf("question %d: %+v straight, %+v resumed", i, straight.Questions[i], resumed.Questions[i])
		}
	}
	fp := map[string]string{}
	for _, r := range straight.Rollouts {
		fp[r.Config+r.ID+string(rune('0'+r.Sample))] = r.Fingerprint
	}
	for _, r := range resumed.Rollouts {
		if fp[r.Config+r.ID+string(rune('0'+r.Sample))] != r.Fingerprint {
			t.Errorf("%s %s #%d rolled out differently after resuming", r.Config, r.ID, r.Sample)
		}
	}
}

// TestRunRefusesDuplicateQuestions: rollouts are resumed by (dataset, id),
// so two questions sharing both would take each other's rollouts. Rows
// without ids in nq_test.jsonl and nq_dev.jsonl are both nq/0, nq/1, …:
// the run is refused naming the id and both files, before any rollout,
// as `dartc eval` refuses them.
func TestRunRefusesDuplicateQuestions(t *testing.T) {
	f := runtest.Get(t)
	s, err := connect.Open(f.Index, httpretrieve.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	test, dev := filepath.Join(data, "nq_test.jsonl"), filepath.Join(data, "nq_dev.jsonl")
	os.WriteFile(test, []byte(`{"question": "who got the first nobel prize in physics", "golden_answers": ["Wilhelm Conrad Röntgen"]}`+"\n"), 0o644)
	os.WriteFile(dev, []byte(`{"question": "where is the money pit", "golden_answers": ["Oak Island"]}`+"\n"), 0o644)
	dir := t.TempDir()
	_, err = leasrun.Run(context.Background(), leasrun.Options{
		Agent: agent.Config{Model: f.Model, Searcher: s, Session: &runtime.Options{IntraOpThreads: 1},
			MaxTurns: 1, MaxTurnTokens: 2, Sampling: runtime.Sampling{Temperature: 1, TopK: 20}},
		Trained:  map[leas.Config]string{leas.Reas: f.Adapters["reason"], leas.Tool: f.Adapters["tool"], leas.Unified: f.Adapters["unified"]},
		Datasets: []string{test, dev}, K: 1, Batch: 1, Dir: dir,
	})
	if err == nil || !strings.Contains(err.Error(), `dataset nq has question id "0" twice`) || !strings.Contains(err.Error(), test) || !strings.Contains(err.Error(), dev) {
		t.Fatalf("err = %v; want the duplicate nq/0 refused naming both files", err)
	}
	if _, err := os.Stat(filepath.Join(dir, leasrun.RolloutsFile)); !os.IsNotExist(err) {
		t.Errorf("rollouts.jsonl written before the refusal: %v", err)
	}
}

// TestRunChecksBeforeRollingOut: what would fail or do harm is refused
// before any rollout. A smoothing alpha that is not finite and > 0 (which
// leas.Analyze refuses only after every rollout); an output folder leas
// did not write, left untouched; a row of the wrong kind in rollouts.jsonl,
// named by its field and line, not in Go's terms.
func TestRunChecksBeforeRollingOut(t *testing.T) {
	f := runtest.Get(t)
	opts := func(dir string) leasrun.Options {
		return leasrun.Options{
			Agent: agent.Config{Model: f.Model, Session: &runtime.Options{IntraOpThreads: 1},
				MaxTurns: 1, MaxTurnTokens: 2, Sampling: runtime.Sampling{Temperature: 1, TopK: 20}},
			Trained:  map[leas.Config]string{leas.Reas: f.Adapters["reason"], leas.Tool: f.Adapters["tool"], leas.Unified: f.Adapters["unified"]},
			Datasets: []string{filepath.Join(f.Data, "nq_test.jsonl")}, Limit: 1, K: 1, Batch: 1, Dir: dir,
		}
	}
	for _, alpha := range []float64{-1, math.NaN(), math.Inf(1)} {
		dir := filepath.Join(t.TempDir(), "leas")
		o := opts(dir)
		o.Alpha = alpha
		if _, err := leasrun.Run(context.Background(), o); err == nil || !strings.Contains(err.Error(), "alpha") || !strings.Contains(err.Error(), "finite and > 0") {
			t.Errorf("alpha %v: %v", alpha, err)
		}
		if _, err := os.Stat(filepath.Join(dir, leasrun.RolloutsFile)); !os.IsNotExist(err) {
			t.Errorf("alpha %v: rolled out before refusing it (%v)", alpha, err)
		}
	}

	notes := t.TempDir()
	mine := map[string]string{leasrun.SummaryFile: `{"mine": true}`, leasrun.ResultsFile: "my results\n"}
	for name, content := range mine {
		os.WriteFile(filepath.Join(notes, name), []byte(content), 0o644)
	}
	if _, err := leasrun.Run(context.Background(), opts(notes)); err == nil || !strings.Contains(err.Error(), "refusing to write into "+notes) {
		t.Errorf("a folder of the user's: %v", err)
	}
	entries, _ := os.ReadDir(notes)
	if len(entries) != len(mine) {
		t.Errorf("%d files in the user's folder, want its %d", len(entries), len(mine))
	}
	for name, content := range mine {
		if b, err := os.ReadFile(filepath.Join(notes, name)); err != nil || string(b) != content {
			t.Errorf("%s: %q (%v), want the user's %q", name, b, err, content)
		}
	}

	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "settings.json"), []byte(`{"command": "leas"}`), 0o644)
	os.WriteFile(filepath.Join(bad, leasrun.RolloutsFile), []byte(`{"config": "M_Base", "id": "test_0", "em": "1"}`+"\n"), 0o644)
	_, err := leasrun.Run(context.Background(), opts(bad))
	if err == nil || !strings.Contains(err.Error(), `rollouts.jsonl:1: field "em" is a string, want a number`) || strings.Contains(err.Error(), "Go ") {
		t.Errorf("a string em in rollouts.jsonl: %v", err)
	}
}

// TestCheckOutputOlderReports: a report written before settings.json named
// its command is still leas's, with rollouts.jsonl or — when that leas
// stopped before its first rollout — with settings.json alone; a folder
// with another settings.json is not.
func TestCheckOutputOlderReports(t *testing.T) {
	settings := `{"` + leas.Reas.String() + `":"a.safetensors","k":"8"}`
	for _, c := range []struct {
		files map[string]string
		ok    bool
	}{
		{map[string]string{"settings.json": settings}, true},
		{map[string]string{"settings.json": settings, leasrun.RolloutsFile: ""}, true},
		{map[string]string{"settings.json": settings, "notes.txt": "mine"}, false},
		{map[string]string{"settings.json": `{"k":"8"}`}, false},
	} {
		dir := t.TempDir()
		for name, body := range c.files {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := leasrun.CheckOutput(dir); (err == nil) != c.ok {
			t.Errorf("%v: %v, want ok %v", c.files, err, c.ok)
		}
	}
}
