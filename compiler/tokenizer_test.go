package compiler_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/models/tokenizer"
	"github.com/dartc/dartc/runtime/agent"
)

const miniTokenizer = "../models/mini/model"

// A tokenizer given at compile time is copied into the directory and
// recorded by digest; the agent then resolves it from the manifest and
// refuses another one.
func TestCompileRecordsTokenizer(t *testing.T) {
	out := filepath.Join(t.TempDir(), "c")
	man, err := compiler.Compile(filepath.Join(exportDir, "torchscript", "model.onnx"), out, compiler.Options{Rank: 2, Graphs: []string{manifest.GraphDecode}, Tokenizer: miniTokenizer})
	if err != nil {
		t.Fatal(err)
	}
	if man.Tokenizer == nil {
		t.Fatal("manifest records no tokenizer")
	}
	want, err := tokenizer.Digest(miniTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	got, err := tokenizer.Digest(filepath.Join(out, man.Tokenizer.Dir))
	if err != nil {
		t.Fatal(err)
	}
	if man.Tokenizer.SHA256 != want || got != want {
		t.Errorf("digests: manifest %s, copy %s, source %s", man.Tokenizer.SHA256, got, want)
	}
	read, err := manifest.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(miniTokenizer)
	if err != nil {
		t.Fatal(err)
	}
	if read.Tokenizer == nil || read.Tokenizer.Vocab != tok.VocabSize() || len(read.Tokenizer.Files) != 2 {
		t.Errorf("manifest.json tokenizer %+v", read.Tokenizer)
	}
	dir, err := agent.TokenizerDir(out, read, "")
	if err != nil || dir != filepath.Join(out, manifest.TokenizerDir) {
		t.Errorf("TokenizerDir = %q, %v; want the copy", dir, err)
	}
	if _, err := agent.TokenizerDir(out, read, miniTokenizer); err != nil {
		t.Errorf("the same tokenizer given again: %v", err)
	}
	_, err = agent.TokenizerDir(out, read, "../data/qwen2-tokenizer")
	if err == nil || !strings.Contains(err.Error(), "is not the one") {
		t.Errorf("another tokenizer: got %v, want a refusal", err)
	}
}

// A tokenizer with more ids than the model's vocabulary is refused and
// nothing is written.
func TestCompileRefusesForeignTokenizer(t *testing.T) {
	out := filepath.Join(t.TempDir(), "c")
	_, err := compiler.Compile(filepath.Join(exportDir, "torchscript", "model.onnx"), out, compiler.Options{Rank: 2, Graphs: []string{manifest.GraphDecode}, Tokenizer: "../data/qwen2-tokenizer"})
	if err == nil || !strings.Contains(err.Error(), "do not belong together") {
		t.Fatalf("got %v, want the vocabulary mismatch", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("output exists after a refused compile: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(out))
	if len(entries) != 0 {
		t.Errorf("leftovers: %v", entries)
	}
}
