package run_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/eval"
	"github.com/dartc/dartc/eval/run"
	"github.com/dartc/dartc/runtime/agent"
	"github.com/dartc/dartc/trajectory"
)

var datasets = []string{"../../data/demo/nq_test.jsonl", "../../data/demo/bamboogle.jsonl"}

// oracle answers a question right when its number (in the order asked
// over all runs) is even, with a wrong answer otherwise; it fails on call
// failAt (1-based, 0: never) and records what it was asked.
type oracle struct {
	calls, failAt int
	asked         []string
}

func (o *oracle) Roll(_ context.Context, qs []agent.Question) ([]*trajectory.Trajectory, error) {
	o.calls++
	if o.calls == o.failAt {
		return nil, errors.New("device lost")
	}
	var out []*trajectory.Trajectory
	for _, q := range qs {
		ans := "no idea"
		if right(q.Question) {
			// Gold in other case and with punctuation: normalization must match it.
			ans = strings.ToUpper(q.Golden[0]) + "."
		}
		o.asked = append(o.asked, q.ID)
		out = append(out, &trajectory.Trajectory{ID: q.ID, Question: q.Question, Tokens: make([]int64, 10), PromptLen: 4,
			Response: "<think>x</think>\n<answer>" + ans + "</answer>", Answer: ans, Stop: agent.StopAnswer, Turns: 1})
	}
	return out, nil
}

// right decides from the question text alone, so that it does not depend
// on batching or resuming: questions of even length are answered right.
func right(q string) bool { return len(q)%2 == 0 }

// expected computes EM per dataset directly from the files.
func expected(t *testing.T, limit int) (map[string]float64, int) {
	t.Helper()
	want, total := map[string]float64{}, 0
	for _, p := range datasets {
		exs, err := eval.Load(p)
		if err != nil {
			t.Fatal(err)
		}
		exs = exs[:min(limit, len(exs))]
		n := 0
		for _, ex := range exs {
			if right(ex.Question) {
				n++
			}
		}
		want[exs[0].Source] = float64(n) / float64(len(exs))
		total += len(exs)
	}
	return want, total
}

func checkTable(t *testing.T, res *run.Result, limit int) {
	t.Helper()
	want, total := expected(t, limit)
	if res.Total != total {
		t.Fatalf("table over %d questions, want %d", res.Total, total)
	}
	em := res.Table.Rows[0]
	if em.Name != "EM" || len(res.Table.Columns) != 2 || res.Table.Columns[0] != "nq" || res.Table.Columns[1] != "bamboogle" {
		t.Fatalf("table shape: columns %v, first row %q", res.Table.Columns, em.Name)
	}
	for src, w := range want {
		if math.Abs(em.Values[src]-w) > 1e-12 {
			t.Errorf("EM on %s = %v, want %v", src, em.Values[src], w)
		}
	}
}

// TestRunScoresAndWritesTable: every question is rolled out once, scored
// by the real scorer, and the written table is what `dartc eval score`
// computes from the written JSONL.
func TestRunScoresAndWritesTable(t *testing.T) {
	dir := t.TempDir()
	o := &oracle{}
	res, err := run.Run(context.Background(), o, run.Options{Datasets: datasets, Dir: dir, Limit: 12, Batch: 5})
	if err != nil {
		t.Fatal(err)
	}
	checkTable(t, res, 12)
	if o.calls != 5 || res.Rolled != 24 || res.Resumed != 0 {
		t.Fatalf("%d calls, %d rolled, %d resumed; want 5, 24, 0", o.calls, res.Rolled, res.Resumed)
	}
	preds, err := eval.ReadPredictions(filepath.Join(dir, run.PredictionsFile), "")
	if err != nil {
		t.Fatal(err)
	}
	rescored := eval.ScorePredictions(preds).MetricsTable("")
	for i, row := range rescored.Rows {
		for _, c := range rescored.Columns {
			if row.Values[c] != res.Table.Rows[i].Values[c] {
				t.Errorf("eval score gives %s %s = %v, the run's table %v", row.Name, c, row.Values[c], res.Table.Rows[i].Values[c])
			}
		}
	}
	for _, ext := range []string{".md", ".csv", ".json"} {
		b, err := os.ReadFile(filepath.Join(dir, run.TablePrefix+ext))
		if err != nil || !strings.Contains(string(b), "Bamboogle") && ext == ".md" {
			t.Errorf("table%s: %v %q", ext, err, b)
		}
	}
}

// TestRunResumes: a run that fails mid-way keeps the finished batches; the
// next run (after a torn line is appended, as a crash mid-write leaves)
// rolls out only the rest, and the table equals an uninterrupted run's.
func TestRunResumes(t *testing.T) {
	dir := t.TempDir()
	opts := run.Options{Datasets: datasets, Dir: dir, Limit: 10, Batch: 4}
	first := &oracle{failAt: 3}
	if _, err := run.Run(context.Background(), first, opts); err == nil || !strings.Contains(err.Error(), "device lost") {
		t.Fatalf("want the roller's error, got %v", err)
	}
	recs, _, err := run.ReadRecords(filepath.Join(dir, run.PredictionsFile))
	if err != nil || len(recs) != 8 {
		t.Fatalf("after the failure: %d records (%v), want the 8 of two batches", len(recs), err)
	}
	f, err := os.OpenFile(filepath.Join(dir, run.PredictionsFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"id":"test_9","data_so`)
	f.Close()

	second := &oracle{}
	res, err := run.Run(context.Background(), second, opts)
	if err != nil {
		t.Fatal(err)
	}
	if res.Resumed != 8 || res.Rolled != 12 || len(second.asked) != 12 {
		t.Fatalf("resumed %d, rolled %d, asked %d; want 8, 12, 12", res.Resumed, res.Rolled, len(second.asked))
	}
	for _, id := range second.asked {
		for _, r := range recs {
			if r.ID == id && r.Source == "nq" && strings.HasPrefix(id, "test_") {
				t.Errorf("question %s asked again after resuming", id)
			}
		}
	}
	checkTable(t, res, 10)
	all, _, err := run.ReadRecords(filepath.Join(dir, run.PredictionsFile))
	if err != nil || len(all) != 20 {
		t.Fatalf("final file: %d records (%v), want 20", len(all), err)
	}
	seen := map[string]bool{}
	for _, r := range all {
		if seen[r.Key()] {
			t.Fatalf("question %s/%s twice in the file", r.Source, r.ID)
		}
		seen[r.Key()] = true
	}
	// Nothing left: a third run rolls out nothing and gives the same table.
	third := &oracle{}
	res3, err := run.Run(context.Background(), third, opts)
	if err != nil || third.calls != 0 || res3.Resumed != 20 {
		t.Fatalf("third run: %v, %d calls, %d resumed", err, third.calls, res3.Resumed)
	}
	checkTable(t, res3, 10)
}

func TestLoadQuestionsErrors(t *testing.T) {
	if _, err := run.LoadQuestions(nil, 0); err == nil {
		t.Error("no datasets: no error")
	}
	dir := t.TempDir()
	dup := filepath.Join(dir, "nq_test.jsonl")
	line := `{"id": "a", "question": "q", "golden_answers": ["x"]}` + "\n"
	os.WriteFile(dup, []byte(line+line), 0o644)
	if _, err := run.LoadQuestions([]string{dup}, 0); err == nil || !strings.Contains(err.Error(), `"a" twice`) {
		t.Errorf("duplicate ids: %v", err)
	}
	report := filepath.Join(dir, "report")
	os.Mkdir(report, 0o755)
	os.WriteFile(filepath.Join(report, run.SettingsFile), []byte(`{"command": "eval"}`), 0o644)
	os.WriteFile(filepath.Join(report, run.PredictionsFile), []byte("{not json}\n"), 0o644)
	if _, err := run.Run(context.Background(), &oracle{}, run.Options{Datasets: datasets[:1], Dir: report}); err == nil || !strings.Contains(err.Error(), ":1:") {
		t.Errorf("corrupt predictions file: %v", err)
	}
}

// TestResumeRefusesOtherSettings: rows made with other adapters or
// settings are never mixed into a resumed report: a changed setting is
// refused naming it, rows without a settings record or under another
// run's id are refused, and the same settings resume.
func TestResumeRefusesOtherSettings(t *testing.T) {
	dir := t.TempDir()
	settings := map[string]string{"model": strings.Repeat("a", 64), "adapters": strings.Repeat("b", 64), "max_turns": "2"}
	opts := run.Options{Datasets: datasets, Dir: dir, Limit: 3, Batch: 2, Settings: settings}
	if _, err := run.Run(context.Background(), &oracle{failAt: 2}, opts); err == nil {
		t.Fatal("the first run did not stop")
	}
	other := map[string]string{}
	for k, v := range settings {
		other[k] = v
	}
	other["adapters"] = strings.Repeat("c", 64)
	o := opts
	o.Settings = other
	if _, err := run.Run(context.Background(), &oracle{}, o); err == nil || !strings.Contains(err.Error(), "adapters") || !strings.Contains(err.Error(), "bbbbbbbbbbbb") {
		t.Errorf("other adapters: %v", err)
	}
	if _, err := run.Run(context.Background(), &oracle{}, opts); err != nil {
		t.Fatalf("same settings: %v", err)
	}
	recs, _, err := run.ReadRecords(filepath.Join(dir, run.PredictionsFile))
	if err != nil || len(recs) != 6 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
	for _, r := range recs {
		if r.Run != run.SettingsID(settings) {
			t.Fatalf("row %s has run %q", r.ID, r.Run)
		}
	}
	// A row of another run appended by hand.
	f, err := os.OpenFile(filepath.Join(dir, run.PredictionsFile), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"id":"x","data_source":"nq","question":"q","golden_answers":["a"],"pred":"a","run":"0123456789abcdef"}` + "\n")
	f.Close()
	if _, err := run.Run(context.Background(), &oracle{}, opts); err == nil || !strings.Contains(err.Error(), "row 7") {
		t.Errorf("a row of another run: %v", err)
	}
	// Rows without settings.json (an older report).
	os.Remove(filepath.Join(dir, run.SettingsFile))
	if _, err := run.Run(context.Background(), &oracle{}, opts); err == nil || !strings.Contains(err.Error(), "no settings.json") {
		t.Errorf("no settings record: %v", err)
	}
}

// TestResumedRowsScoredAgainstCurrentGolds: rows resumed from a report
// written before golds that normalize to "" were left out keep their stored
// scores (SubEM 1 for any answer, against the empty gold); the table scores
// every row again against the golds as loaded now.
func TestResumedRowsScoredAgainstCurrentGolds(t *testing.T) {
	dir, data := t.TempDir(), filepath.Join(t.TempDir(), "q.jsonl")
	rows := `{"id":"1","question":"Where is the Louvre?","golden_answers":["The","Paris"]}` + "\n" +
		`{"id":"2","question":"Where is Big Ben?","golden_answers":["London"]}` + "\n"
	if err := os.WriteFile(data, []byte(rows), 0o644); err != nil {
		t.Fatal(err)
	}
	opts := run.Options{Datasets: []string{data}, Dir: dir, Batch: 2}
	if _, err := run.Run(context.Background(), &oracle{}, opts); err != nil {
		t.Fatal(err)
	}
	// What an earlier scorer stored for the wrong answer (against an empty
	// gold it kept).
	path := filepath.Join(dir, run.PredictionsFile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	stale := strings.ReplaceAll(string(b), `"subem":0`, `"subem":1`)
	if stale == string(b) {
		t.Fatalf("no wrong answer to make stale in %s", b)
	}
	if err := os.WriteFile(path, []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := run.Run(context.Background(), &oracle{}, opts)
	if err != nil {
		t.Fatal(err)
	}
	recs, _, err := run.ReadRecords(path)
	if err != nil {
		t.Fatal(err)
	}
	want := 0.0
	for _, r := range recs {
		want += run.Score(r.Pred, r.Golden).SubEM / float64(len(recs))
	}
	if want != 0.5 {
		t.Fatalf("SubEM from the current golds %v, want 0.5 (one right, one wrong answer)", want)
	}
	for _, row := range res.Table.Rows {
		if row.Name == "SubEM" {
			for _, v := range row.Values {
				if math.Abs(v-want) > 1e-12 {
					t.Errorf("SubEM %v in the table, want %v from the current golds", v, want)
				}
			}
		}
	}
}
