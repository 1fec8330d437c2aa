package eval

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/qa"
)

func TestReadAndScorePredictions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bamboogle_preds.jsonl")
	rows := `{"id":1,"golden_answers":["James Madison"],"pred":"james madison"}
{"id":2,"golden_answers":"Titan IIIE","response":"<think>…</think><answer>the Titan IIIE rocket</answer>"}

{"id":3,"golden_answers":["1999"],"response":"no answer tag","data_source":"nq"}
{"id":4,"golden_answers":["x"],"pred":"","response":"<answer>x</answer>","source":"nq"}
`
	os.WriteFile(path, []byte(rows), 0o644)
	ps, err := ReadPredictions(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 4 || ps[0].Source != "bamboogle" || ps[2].Source != "nq" || ps[3].Source != "nq" || ps[1].Golden[0] != "Titan IIIE" {
		t.Fatalf("predictions = %+v", ps)
	}
	b := ScorePredictions(ps)
	// bamboogle: row 1 EM 1; row 2 "titan iiie rocket" vs "titan iiie": EM 0,
	// F1 2·(2/3·1)/(2/3+1) = 0.8, SubEM 1. nq: row 3 no answer → 0; row 4 pred ""
	// wins over the response → 0.
	m, n := b.Mean("bamboogle")
	if n != 2 || m.EM != 0.5 || math.Abs(m.F1-0.9) > 1e-12 || m.SubEM != 1 {
		t.Errorf("bamboogle = %+v over %d", m, n)
	}
	if m, n := b.Mean("nq"); n != 2 || m != (qa.Score{}) {
		t.Errorf("nq = %+v over %d", m, n)
	}
}

func TestReadPredictionsErrors(t *testing.T) {
	dir := t.TempDir()
	cases := map[string]string{
		`{"pred":"a"}`:             ":1: no golden_answers",
		`{"golden_answers":["a"]}`: `:1: need "pred"`,
		"{\"golden_answers\":[\"a\"],\"pred\":\"a\"}\n{bad": ":2:",
		"": "no rows",
	}
	i := 0
	for body, want := range cases {
		i++
		path := filepath.Join(dir, "p"+string(rune('0'+i))+".jsonl")
		os.WriteFile(path, []byte(body), 0o644)
		if _, err := ReadPredictions(path, "x"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", body, err, want)
		}
	}
}
