package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestForceRule: every command that writes an output refuses an existing
// one without --force, and with --force replaces only what it wrote itself
// (or an empty directory): the source model's folder, a corpus and a
// user's file are never deleted.
func TestForceRule(t *testing.T) {
	dir := t.TempDir()
	corpus := "../../retrieval/testdata/small.jsonl"
	write := func(path, text string) {
		t.Helper()
		os.MkdirAll(filepath.Dir(path), 0o755)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(path string) string {
		b, _ := os.ReadFile(path)
		return string(b)
	}

	t.Run("search index", func(t *testing.T) {
		idx := filepath.Join(dir, "wiki.bm25")
		if msg, code := dartcProcess(t, "search", "index", "--corpus", corpus, "-o", idx); code != 0 {
			t.Fatalf("first index: exit %d: %s", code, msg)
		}
		first := read(idx)
		msg, code := dartcProcess(t, "search", "index", "--corpus", corpus, "-o", idx)
		if code == 0 || !strings.Contains(msg, "--force") {
			t.Fatalf("index over an existing file without --force: exit %d: %s", code, msg)
		}
		if read(idx) != first {
			t.Fatal("refused index changed the file")
		}
		if msg, code := dartcProcess(t, "search", "index", "--corpus", corpus, "-o", idx, "--force", "--k1", "1.2"); code != 0 {
			t.Fatalf("--force over an index: exit %d: %s", code, msg)
		}
		notes := filepath.Join(dir, "notes.txt")
		write(notes, "mine")
		if msg, code := dartcProcess(t, "search", "index", "--corpus", corpus, "-o", notes, "--force"); code == 0 || !strings.Contains(msg, "refusing to replace") {
			t.Fatalf("--force over a user's file: exit %d: %s", code, msg)
		}
		if read(notes) != "mine" {
			t.Fatal("--force replaced a user's file")
		}
		own := filepath.Join(dir, "own.jsonl")
		write(own, read(corpus))
		if msg, code := dartcProcess(t, "search", "index", "--corpus", own, "-o", own, "--force"); code == 0 {
			t.Fatalf("--force over the corpus itself: exit 0: %s", msg)
		}
		if read(own) != read(corpus) {
			t.Fatal("the corpus was replaced")
		}
	})
	t.Run("compile into the model's folder", func(t *testing.T) {
		m := filepath.Join(dir, "m")
		write(filepath.Join(m, "model.onnx"), read(filepath.Join(fixtures, "ortgenai-static-scatter-bias-decoder/model.onnx")))
		msg, code := dartcProcess(t, "compile", filepath.Join(m, "model.onnx"), "-o", m, "--force", "--graphs", "decode")
		if code == 0 || !strings.Contains(msg, "input") {
			t.Fatalf("compile -o MODEL_DIR --force: exit %d: %s", code, msg)
		}
		if _, err := os.Stat(filepath.Join(m, "model.onnx")); err != nil {
			t.Fatalf("the source model is gone: %v", err)
		}
	})
	t.Run("models synth over a user's folder", func(t *testing.T) {
		mine := filepath.Join(dir, "mine")
		write(filepath.Join(mine, "thesis.tex"), "mine")
		msg, code := dartcProcess(t, "models", "synth", "-o", mine, "--force")
		if code == 0 || !strings.Contains(msg, "refusing to replace") {
			t.Fatalf("models synth -o USER_DIR --force: exit %d: %s", code, msg)
		}
		if read(filepath.Join(mine, "thesis.tex")) != "mine" {
			t.Fatal("a user's file was deleted")
		}
	})
}
