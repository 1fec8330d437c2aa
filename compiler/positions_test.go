package compiler_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
)

// TestMaxPositionsRecorded: compile records the model's context in
// manifest.json, from the source that bounds it (the smallest found), or
// from --max-positions; and records nothing when nothing says.
func TestMaxPositionsRecorded(t *testing.T) {
	cfg, _ := qwen2.Preset("tiny")
	cfg.MaxPositions = 640
	res, err := synth.Synthesize(cfg, filepath.Join(t.TempDir(), "src"), synth.Options{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		src  string
		opts compiler.Options
		want int64
		from string
	}{
		{"synth config.json", res.ModelPath, compiler.Options{Graphs: decodeOnly}, 640, "config.json max_position_embeddings"},
		{"export config.json in the folder above", filepath.Join(exportDir, "torchscript", "model.onnx"), compiler.Options{Graphs: decodeOnly}, 256, "config.json max_position_embeddings"},
		{"rotary cache", filepath.Join(llamaDir, "model.onnx"), compiler.Options{Graphs: decodeOnly}, 2048, "rotary cache cos_cache"},
		{"static cache below the rotary cache", filepath.Join(scatterDir, "model.onnx"), compiler.Options{Graphs: decodeOnly}, 16, "static KV cache"},
		{"flag", res.ModelPath, compiler.Options{Graphs: decodeOnly, MaxPositions: 100}, 100, "--max-positions"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, man := compileFixture(t, c.src, c.opts)
			if man.Model.MaxLength != c.want || !strings.Contains(man.Model.MaxLengthFrom, c.from) {
				t.Fatalf("max_length %d from %q, want %d from %q", man.Model.MaxLength, man.Model.MaxLengthFrom, c.want, c.from)
			}
		})
	}
	t.Run("unknown", func(t *testing.T) {
		os.Remove(filepath.Join(res.Dir, synth.ConfigFile))
		_, man := compileFixture(t, res.ModelPath, compiler.Options{Graphs: decodeOnly})
		if man.Model.MaxLength != 0 {
			t.Fatalf("max_length %d from %q with nothing to say it", man.Model.MaxLength, man.Model.MaxLengthFrom)
		}
	})
}
