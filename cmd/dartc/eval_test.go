package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestEvalScore(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "preds.jsonl")
	os.WriteFile(path, []byte(`{"golden_answers":["Paris"],"response":"<answer> paris. </answer>","data_source":"nq"}
{"golden_answers":["James Madison"],"pred":"Madison","data_source":"bamboogle"}
`), 0o644)
	out, err := runDartc(t, "", "eval", "score", "-o", filepath.Join(dir, "table"), path)
	if err != nil {
		t.Fatal(err)
	}
	// EM (1+0)/2, F1 (1 + 2/3)/2, SubEM (1+0)/2.
	for _, want := range []string{"2 questions", "EM     0.5000", "F1     0.8333", "SubEM  0.5000", "| metric | NQ | Bamboogle | Avg |", "| F1 | 1.000 | 0.667 | 0.833 |"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, ext := range []string{".md", ".csv", ".json"} {
		if _, err := os.Stat(filepath.Join(dir, "table"+ext)); err != nil {
			t.Error(err)
		}
	}
	out, err = runDartc(t, "", "eval", "score", "--json", path)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Questions int
		Overall   struct{ EM, F1, SubEM float64 }
		Table     struct{ Columns []string }
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if got.Questions != 2 || got.Overall.EM != 0.5 || strings.Join(got.Table.Columns, ",") != "nq,bamboogle" {
		t.Errorf("json = %s", out)
	}
	if _, err := runDartc(t, "", "eval", "score"); err == nil {
		t.Error("no file accepted")
	}
}
