package eval

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadDataset: any bytes in a dataset file (FlashRAG or R1-Searcher
// JSONL) give rows or an error, never a panic; every row returned has a
// question and at least one gold answer. The same bytes as a predictions
// file, likewise.
func FuzzLoadDataset(f *testing.F) {
	f.Add([]byte(`{"id": "a", "question": "who?", "golden_answers": ["x", 3]}` + "\n"))
	f.Add([]byte(`{"idx": 7, "question": "who?", "answer": "x"}` + "\n" + `{"idx": 8, "question": "why?", "answer": ["y"]}`))
	f.Add([]byte("\xef\xbb\xbf" + `{"question": "q", "golden_answers": [], "pred": "<answer>x</answer>"}`))
	f.Add([]byte(`{"question": "q", "golden_answers": {"a": 1}}` + "\n\n  \n"))
	f.Add([]byte(`{"id": [1], "question": 5}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), "d.jsonl")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		exs, err := Load(path)
		if err == nil {
			if len(exs) == 0 {
				t.Fatal("no rows and no error")
			}
			for i, ex := range exs {
				if strings.TrimSpace(ex.Question) == "" || len(ex.Golden) == 0 {
					t.Fatalf("row %d loaded without a question or a gold answer: %+v", i, ex)
				}
			}
		}
		if ps, err := ReadPredictions(path, "d"); err == nil {
			ScorePredictions(ps)
		}
	})
}
