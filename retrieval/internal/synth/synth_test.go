package synth

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestWriteIsDeterministic(t *testing.T) {
	dir, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	src, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	var a, b bytes.Buffer
	if err := src.Write(&a, 500, 7); err != nil {
		t.Fatal(err)
	}
	src.Write(&b, 500, 7)
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("same seed, different corpora")
	}
	lines := strings.Split(strings.TrimSpace(a.String()), "\n")
	if len(lines) != 500 {
		t.Fatalf("%d lines, want 500", len(lines))
	}
	var row struct{ ID, Contents string }
	if err := json.Unmarshal([]byte(lines[499]), &row); err != nil || row.ID != "499" || !strings.HasPrefix(row.Contents, "\"") {
		t.Errorf("last row %q: %v", lines[499], err)
	}
}
