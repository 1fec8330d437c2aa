package eval

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dartc/dartc/qa"
	"github.com/parquet-go/parquet-go"
)

func TestLoadFlashRAG(t *testing.T) {
	ex, err := Load("testdata/flashrag/nq_test.jsonl") // no trailing newline in this file
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) != 17 {
		t.Fatalf("got %d examples, want 17", len(ex))
	}
	want := Example{ID: "test_0", Question: "who got the first nobel prize in physics", Golden: []string{"Wilhelm Conrad Röntgen"}, Source: "nq"}
	if !reflect.DeepEqual(ex[0], want) {
		t.Errorf("first = %+v, want %+v", ex[0], want)
	}
	if last := ex[16]; last.ID != "test_16" || !reflect.DeepEqual(last.Golden, []string{"Oak Island"}) {
		t.Errorf("last = %+v", last)
	}
}

func TestLoadR1Searcher(t *testing.T) {
	ex, err := Load("testdata/r1-searcher/bamboogle.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) != 20 {
		t.Fatalf("got %d examples", len(ex))
	}
	want := Example{ID: "1", Question: "Who was president of the United States in the year that Citibank was founded?", Golden: []string{"james madison"}, Source: "bamboogle"}
	if !reflect.DeepEqual(ex[0], want) {
		t.Errorf("first = %+v, want %+v", ex[0], want)
	}
	if ex[2].Golden[0] != "1999" {
		t.Errorf("third gold = %q", ex[2].Golden)
	}
}

func TestLoadSearchR1Parquet(t *testing.T) {
	ex, err := Load("testdata/search_r1_nq_head12.parquet")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("testdata/search_r1_nq_head12.expected.json")
	if err != nil {
		t.Fatal(err)
	}
	var want []struct {
		ID         string   `json:"id"`
		Question   string   `json:"question"`
		Golden     []string `json:"golden_answers"`
		DataSource string   `json:"data_source"`
	}
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if len(ex) != len(want) || len(want) != 12 {
		t.Fatalf("got %d rows, pyarrow read %d", len(ex), len(want))
	}
	for i, w := range want {
		got := ex[i]
		if got.ID != w.ID || got.Question != w.Question || !reflect.DeepEqual(got.Golden, w.Golden) || got.Source != w.DataSource {
			t.Errorf("row %d = %+v, pyarrow says %+v", i, got, w)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]struct{ body, want string }{
		"bad_json.jsonl":     {"{\"id\":1,\"question\":\"q\",\"golden_answers\":[\"a\"]}\n{oops\n", "bad_json.jsonl:2:"},
		"no_question.jsonl":  {"{\"id\":1,\"question\":\" \",\"golden_answers\":[\"a\"]}\n", "question is missing"},
		"no_gold.jsonl":      {"{\"id\":1,\"question\":\"q\",\"golden_answers\":[]}\n", "no gold answer"},
		"unknown.jsonl":      {"{\"q\":1}\n", "unknown dataset format"},
		"empty.jsonl":        {"\n\n", "no rows"},
		"mixed_format.jsonl": {"{\"question\":\"q\",\"golden_answers\":[\"a\"]}\n{\"question\":\"q\",\"answer\":\"a\"}\n", "mixed_format.jsonl:2: no \"golden_answers\""},
		"bad_gold.jsonl":     {"{\"question\":\"q\",\"golden_answers\":[{\"x\":1}]}\n", "neither a string nor a number"},
	}
	for name, c := range cases {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(c.body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want it to contain %q", name, err, c.want)
		}
	}
	if _, err := Load(filepath.Join(dir, "missing.parquet")); err == nil {
		t.Error("missing parquet file loaded")
	}
}

func TestNumericGolds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "popqa_test.jsonl")
	os.WriteFile(path, []byte(`{"id":7,"question":"year?","golden_answers":[1999,"nineteen"]}`), 0o644)
	ex, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Example{ID: "7", Question: "year?", Golden: []string{"1999", "nineteen"}, Source: "popqa"}); !reflect.DeepEqual(ex[0], want) {
		t.Errorf("got %+v", ex[0])
	}
}

func TestDatasetName(t *testing.T) {
	cases := map[string]string{
		"data/nq_test.jsonl":            "nq",
		"hotpotqa_500.jsonl":            "hotpotqa",
		"2wiki_500.jsonl":               "2wiki",
		"x/nq_search_test.parquet":      "nq",
		"FlashRAG/nq/test.jsonl":        "nq",
		"bamboogle.jsonl":               "bamboogle",
		"runs/musique_500_preds.jsonl":  "musique",
		"my_data.jsonl":                 "my_data",
		"2wikimultihopqa_dev.jsonl":     "2wikimultihopqa",
		"r1searcher_bamboogle_head20.x": "r1searcher_bamboogle_head20",
	}
	for in, want := range cases {
		if got := DatasetName(in); got != want {
			t.Errorf("DatasetName(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestNullGoldIsAnError: a JSON null where a gold answer belongs (the
// field, or an item of its list) is refused naming the file, line and
// field. Read as "" it was a substring of every prediction: SubEM 1 for
// any answer.
func TestNullGoldIsAnError(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]struct{ body, want string }{
		"nq_test.jsonl":       {`{"id": "a", "question": "q", "golden_answers": ["Paris"]}` + "\n" + `{"id": "b", "question": "q", "golden_answers": ["Paris", null]}`, `nq_test.jsonl:2: "golden_answers" item 2 of 2 is null`},
		"hotpotqa_dev.jsonl":  {`{"question": "q", "golden_answers": null}`, `hotpotqa_dev.jsonl:1: "golden_answers" is null`},
		"bamboogle.jsonl":     {`{"idx": 1, "question": "q", "answer": null}`, `bamboogle.jsonl:1: "answer" is null`},
		"musique.jsonl":       {`{"idx": 1, "question": "q", "answer": [null]}`, `musique.jsonl:1: "answer" item 1 of 1 is null`},
		"popqa_test.jsonl":    {`{"question": "q", "golden_answers": [1999, null, "x"]}`, `popqa_test.jsonl:1: "golden_answers" item 2 of 3 is null`},
		"triviaqa_test.jsonl": {`{"question": "q", "golden_answers": [[null]]}`, `neither a string nor a number`},
	}
	for name, c := range cases {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(c.body), 0o644); err != nil {
			t.Fatal(err)
		}
		exs, err := Load(path)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: loaded %+v, err = %v; want an error naming the file and %q", name, exs, err, c.want)
		}
	}
	preds := filepath.Join(dir, "nq_preds.jsonl")
	os.WriteFile(preds, []byte(`{"id": 1, "golden_answers": [null], "pred": "anything"}`+"\n"), 0o644)
	if ps, err := ReadPredictions(preds, ""); err == nil || !strings.Contains(err.Error(), `nq_preds.jsonl:1: "golden_answers" item 1 of 1 is null`) {
		t.Errorf("predictions: read %+v, err = %v", ps, err)
	}
}

// captureWarnings sends slog's default logger to a buffer for the test.
func captureWarnings(t *testing.T) *strings.Builder {
	var b strings.Builder
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&b, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return &b
}

// TestEmptyGoldsAreLeftOut: a gold answer that normalizes to "" ("The",
// ".", "") would give SubEM 1 to every prediction; it is dropped with a
// warning, a question left with no gold is left out, and a file left with
// no question is refused. Each loader and the predictions reader agree.
func TestEmptyGoldsAreLeftOut(t *testing.T) {
	dir := t.TempDir()
	warnings := captureWarnings(t)
	path := filepath.Join(dir, "triviaqa_test.jsonl")
	os.WriteFile(path, []byte(`{"id": "t0", "question": "Which band?", "golden_answers": ["The The", "Matt Johnson's band"]}
{"id": "t1", "question": "Which article?", "golden_answers": ["The", "."]}
{"id": "t2", "question": "Where?", "golden_answers": ["", "Oak Island"]}
`), 0o644)
	exs, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	want := []Example{
		{ID: "t0", Question: "Which band?", Golden: []string{"Matt Johnson's band"}, Source: "triviaqa"},
		{ID: "t2", Question: "Where?", Golden: []string{"Oak Island"}, Source: "triviaqa"},
	}
	if !reflect.DeepEqual(exs, want) {
		t.Fatalf("loaded %+v, want %+v", exs, want)
	}
	for _, ex := range exs {
		if s := qa.ScorePrediction("Paris", ex.Golden); s.SubEM != 0 {
			t.Errorf("%s: a wrong answer scores SubEM %v", ex.ID, s.SubEM)
		}
	}
	w := warnings.String()
	for _, s := range []string{"level=WARN", path, "answers=4", "questions_left_out=1", `line 1: \"The The\"`} {
		if !strings.Contains(w, s) {
			t.Errorf("warning %q does not say %q", w, s)
		}
	}

	r1 := filepath.Join(dir, "bamboogle.jsonl")
	os.WriteFile(r1, []byte(`{"idx": 1, "question": "q", "answer": "the"}
{"idx": 2, "question": "q", "answer": ["A", "Titan"]}
`), 0o644)
	if exs, err := Load(r1); err != nil || len(exs) != 1 || exs[0].ID != "2" || !reflect.DeepEqual(exs[0].Golden, []string{"Titan"}) {
		t.Errorf("R1-Searcher: %+v, %v", exs, err)
	}

	pq := filepath.Join(dir, "nq_search_test.parquet")
	rows := []searchR1Row{{ID: "p0", Question: "q", GoldenAnswers: []string{"a"}}, {ID: "p1", Question: "q", GoldenAnswers: []string{"the", "Röntgen"}}}
	if err := parquet.WriteFile(pq, rows); err != nil {
		t.Fatal(err)
	}
	if exs, err := Load(pq); err != nil || len(exs) != 1 || exs[0].ID != "p1" || !reflect.DeepEqual(exs[0].Golden, []string{"Röntgen"}) {
		t.Errorf("parquet: %+v, %v", exs, err)
	}

	preds := filepath.Join(dir, "nq_preds.jsonl")
	os.WriteFile(preds, []byte(`{"id": 1, "golden_answers": ["The"], "pred": "anything"}
{"id": 2, "golden_answers": ["An", "Paris"], "pred": "anything"}
`), 0o644)
	ps, err := ReadPredictions(preds, "")
	if err != nil || len(ps) != 1 || !reflect.DeepEqual(ps[0].Golden, []string{"Paris"}) {
		t.Fatalf("predictions: %+v, %v", ps, err)
	}
	if m, n := ScorePredictions(ps).Mean("nq"); n != 1 || m.SubEM != 0 {
		t.Errorf("predictions: %+v over %d, want SubEM 0 over the 1 scorable row", m, n)
	}

	all := filepath.Join(dir, "nq_test.jsonl")
	os.WriteFile(all, []byte(`{"question": "q", "golden_answers": ["the"]}`+"\n"+`{"question": "q", "golden_answers": ["..."]}`+"\n"), 0o644)
	if _, err := Load(all); err == nil || !strings.Contains(err.Error(), "no question can be scored") || !strings.Contains(err.Error(), all) {
		t.Errorf("a file of empty golds: err = %v", err)
	}
}
