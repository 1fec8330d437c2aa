package compiler_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/internal/outpath"
)

// copyFile copies src to dst (0644).
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestForceNeverDeletesForeignFiles: --force replaces an existing artifacts
// directory or an empty one; the source model's folder, an unrelated
// directory, a file, and an artifacts directory holding a file compile did
// not write are refused, and every file in them is still there afterwards.
func TestForceNeverDeletesForeignFiles(t *testing.T) {
	src := filepath.Join(scatterDir, "model.onnx")
	opts := compiler.Options{Rank: 2, Force: true, Graphs: decodeOnly}

	t.Run("source folder", func(t *testing.T) {
		m := filepath.Join(t.TempDir(), "m")
		os.Mkdir(m, 0o755)
		model := filepath.Join(m, "model.onnx")
		copyFile(t, src, model)
		_, err := compiler.Compile(model, m, opts)
		if !errors.Is(err, outpath.ErrNotReplaceable) {
			t.Fatalf("compile -o SOURCE_DIR --force: %v, want a refusal", err)
		}
		if _, err := os.Stat(model); err != nil {
			t.Fatalf("the source model is gone: %v", err)
		}
	})
	t.Run("unrelated directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "photos")
		os.Mkdir(dir, 0o755)
		keep := filepath.Join(dir, "keep.txt")
		os.WriteFile(keep, []byte("mine"), 0o644)
		if _, err := compiler.Compile(src, dir, opts); !errors.Is(err, outpath.ErrNotReplaceable) {
			t.Fatalf("got %v, want a refusal", err)
		}
		if b, err := os.ReadFile(keep); err != nil || string(b) != "mine" {
			t.Fatalf("keep.txt: %q %v", b, err)
		}
	})
	t.Run("file", func(t *testing.T) {
		f := filepath.Join(t.TempDir(), "notes")
		os.WriteFile(f, []byte("mine"), 0o644)
		if _, err := compiler.Compile(src, f, opts); !errors.Is(err, outpath.ErrNotReplaceable) {
			t.Fatalf("got %v, want a refusal", err)
		}
		if b, _ := os.ReadFile(f); string(b) != "mine" {
			t.Fatal("the file was replaced")
		}
	})
	t.Run("artifacts holding a foreign file", func(t *testing.T) {
		out, _ := compileFixture(t, src, compiler.Options{Rank: 2, Graphs: decodeOnly})
		run := filepath.Join(out, "run")
		os.Mkdir(run, 0o755)
		os.WriteFile(filepath.Join(run, "metrics.jsonl"), []byte("{}\n"), 0o644)
		if _, err := compiler.Compile(src, out, opts); !errors.Is(err, outpath.ErrNotReplaceable) {
			t.Fatalf("got %v, want a refusal", err)
		}
		if _, err := os.Stat(filepath.Join(run, "metrics.jsonl")); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("empty directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "empty")
		os.Mkdir(dir, 0o755)
		if _, err := compiler.Compile(src, dir, opts); err != nil {
			t.Fatal(err)
		}
		if _, err := manifest.Read(dir); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("artifacts directory with its tokenizer", func(t *testing.T) {
		src := filepath.Join(exportDir, "torchscript", "model.onnx")
		o := compiler.Options{Rank: 2, Graphs: decodeOnly, Tokenizer: miniTokenizer}
		out, _ := compileFixture(t, src, o)
		o.Force = true
		if _, err := compiler.Compile(src, out, o); err != nil {
			t.Fatalf("--force over an artifacts directory with a tokenizer: %v", err)
		}
		m, err := manifest.Read(out)
		if err != nil || m.Tokenizer == nil {
			t.Fatalf("after --force: %v %v", m, err)
		}
		os.WriteFile(filepath.Join(out, m.Tokenizer.Dir, "notes.txt"), []byte("mine"), 0o644)
		if _, err := compiler.Compile(src, out, o); !errors.Is(err, outpath.ErrNotReplaceable) {
			t.Fatalf("a foreign file in the tokenizer folder: %v, want a refusal", err)
		}
	})
	t.Run("artifacts directory", func(t *testing.T) {
		out, _ := compileFixture(t, src, compiler.Options{Rank: 2, Graphs: decodeOnly})
		if _, err := compiler.Compile(src, out, compiler.Options{Rank: 3, Force: true, Graphs: decodeOnly}); err != nil {
			t.Fatal(err)
		}
		if m, err := manifest.Read(out); err != nil || m.LoRA.Rank != 3 {
			t.Fatalf("after --force: %v %v", m, err)
		}
	})
}
