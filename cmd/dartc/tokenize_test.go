package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dartc/dartc/models/tokenizer"
	"github.com/urfave/cli/v2"
)

// runDartc runs the CLI in-process and returns its standard output.
func runDartc(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	app := newApp()
	var out bytes.Buffer
	app.Writer = &out
	app.Reader = strings.NewReader(stdin)
	app.ExitErrHandler = func(*cli.Context, error) {}
	err := app.Run(interspersed(app, append([]string{"dartc"}, args...)))
	return out.String(), err
}

func TestTokenizeRoundTrip(t *testing.T) {
	casePath := "../../models/tokenizer/testdata/case.txt"
	raw, err := os.ReadFile(casePath)
	if err != nil {
		t.Fatal(err)
	}
	// Default tokenizer directory: found upwards from this package.
	ids, err := runDartc(t, "", "tokenize", casePath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(ids, "\n") != 1 || !strings.HasSuffix(ids, "\n") {
		t.Fatalf("ids are not one line")
	}
	tok, err := tokenizer.Load("../../data/qwen2-tokenizer")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, id := range tok.Encode(string(raw)) {
		want = append(want, strconv.Itoa(id))
	}
	if got := strings.TrimSuffix(ids, "\n"); got != strings.Join(want, " ") {
		t.Fatalf("tokenize printed other ids than tokenizer.Encode")
	}
	if strings.Contains(" "+ids, " 151644 ") {
		t.Fatalf("tokenize parsed <|im_start|> as an added token")
	}
	text, err := runDartc(t, ids, "tokenize", "--tokenizer", "../../data/qwen2-tokenizer", "--decode")
	if err != nil {
		t.Fatal(err)
	}
	if text != string(raw) {
		t.Fatalf("decode of the ids differs from the file")
	}
}

func TestTokenizeErrors(t *testing.T) {
	empty := t.TempDir()
	if _, err := runDartc(t, "", "tokenize", "--tokenizer", empty, "x"); err == nil || !strings.Contains(err.Error(), "merges.txt") {
		t.Errorf("empty tokenizer dir: %v; want an error naming the missing files", err)
	}
	file := filepath.Join(empty, "ids.txt")
	if err := os.WriteFile(file, []byte("12 x3 4"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := runDartc(t, "", "tokenize", "--tokenizer", "../../data/qwen2-tokenizer", "--decode", file)
	if err == nil || !strings.Contains(err.Error(), `word 2 "x3"`) {
		t.Errorf("bad id: %v; want an error naming word 2", err)
	}
	_, err = runDartc(t, "", "tokenize", "--tokenizer", "../../data/qwen2-tokenizer", filepath.Join(empty, "missing.txt"))
	if err == nil || !strings.Contains(err.Error(), "missing.txt") {
		t.Errorf("missing file: %v", err)
	}
}
