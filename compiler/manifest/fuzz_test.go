package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzRead: any bytes as manifest.json give a manifest or an error, never
// a panic; an accepted one has this format, and what the runtime asks of
// it (adapter names, graph inputs and outputs) answers without a panic.
func FuzzRead(f *testing.F) {
	f.Add([]byte(`{"format": "dartc-artifacts/1", "graphs": {"decode": {"file": "decode.onnx", "inputs": [{"name": "x", "dtype": "float32", "dims": ["batch", 3]}]}}, "lora": {"roles": ["reason", "tool"], "targets": [{"a": {"reason": "a0"}, "b": {"reason": "b0"}}]}}`))
	f.Add([]byte(`{"format": "dartc-artifacts/1", "graphs": {"decode": null}}`))
	f.Add([]byte(`{"format": 3}`))
	f.Add([]byte(`{"format": "dartc-artifacts/1", "model": {"max_length": -5, "cache": [{}]}, "graphs": {"x": {"inputs": [{"dims": [true]}]}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, FileName), b, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := Read(dir)
		if err != nil {
			return
		}
		if m.Format != Format {
			t.Fatalf("accepted format %q", m.Format)
		}
		for name, g := range m.Graphs {
			if g == nil || g.File == "" || strings.ContainsAny(g.File, `/\`) || g.File == ".." {
				t.Fatalf("accepted graph %q with file %+v", name, g)
			}
		}
		m.AdapterNames()
		for _, g := range m.Graphs {
			if g == nil {
				continue
			}
			for _, in := range g.Inputs {
				g.Input(in.Name)
			}
			for _, out := range g.Outputs {
				g.Output(out.Name)
			}
		}
	})
}
