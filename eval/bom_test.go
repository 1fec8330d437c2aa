package eval

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// bom is the UTF-8 byte order mark some editors (Notepad, Excel's CSV→JSON
// tools) put at the start of a file.
const bom = "\xef\xbb\xbf"

// TestBOMAccepted: every JSONL input (FlashRAG and R1-Searcher datasets,
// predictions files) reads the same with and without a leading BOM.
func TestBOMAccepted(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ name, body string }{
		{"flashrag.jsonl", `{"id": "a", "question": "who?", "golden_answers": ["x"]}` + "\n"},
		{"r1.jsonl", `{"question": "who?", "answer": "x"}` + "\n"},
	} {
		plain, withBOM := filepath.Join(dir, "plain-"+c.name), filepath.Join(dir, "bom-"+c.name)
		os.WriteFile(plain, []byte(c.body), 0o644)
		os.WriteFile(withBOM, []byte(bom+c.body), 0o644)
		want, err := Load(plain)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Load(withBOM)
		if err != nil {
			t.Fatalf("%s with a BOM: %v", c.name, err)
		}
		if len(got) != 1 || got[0].Question != want[0].Question || got[0].ID != want[0].ID {
			t.Fatalf("%s with a BOM: %+v, want %+v", c.name, got, want)
		}
	}
	preds := filepath.Join(dir, "preds.jsonl")
	os.WriteFile(preds, []byte(bom+`{"question": "who?", "golden_answers": ["x"], "pred": "x"}`+"\n"), 0o644)
	ps, err := ReadPredictions(preds, "d")
	if err != nil || len(ps) != 1 {
		t.Fatalf("predictions with a BOM: %v %v", ps, err)
	}
}

// TestRowTypeErrorsNameTheField: a dataset row with a field of the wrong
// kind is reported by file, line and field, in JSON's words.
func TestRowTypeErrorsNameTheField(t *testing.T) {
	p := filepath.Join(t.TempDir(), "d.jsonl")
	os.WriteFile(p, []byte(`{"id": "a", "question": 5, "golden_answers": ["x"]}`+"\n"), 0o644)
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), `d.jsonl:1: field "question" is a number, want a string`) {
		t.Fatalf("got %v", err)
	}
}
