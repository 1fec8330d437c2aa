package eval

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
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
