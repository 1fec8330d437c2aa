package manifest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadRefusesWhatCompileNeverWrites: a graph file outside the
// directory, a missing graph, negative sizes are refused at read time.
func TestReadRefusesWhatCompileNeverWrites(t *testing.T) {
	base := `"format": "dartc-artifacts/1", "adapters_file": "adapters.safetensors"`
	for body, says := range map[string]string{
		`{` + base + `, "graphs": {"decode": {"file": "../../elsewhere/model.onnx"}}}`: "not a file name inside the directory",
		`{` + base + `, "graphs": {"decode": {"file": "/etc/model.onnx"}}}`:            "not a file name inside the directory",
		`{` + base + `, "graphs": {"decode": null}}`:                                   `graph "decode" is empty`,
		`{` + base + `}`: "no graphs",
		`{` + base + `, "graphs": {"decode": {"file": "d.onnx"}}, "model": {"max_length": -1}}`:                          "max_length is -1",
		`{"format": "dartc-artifacts/1", "adapters_file": "../a.safetensors", "graphs": {"decode": {"file": "d.onnx"}}}`: "adapters_file",
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, FileName), []byte(body), 0o644)
		if _, err := Read(dir); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("%s: %v, want it to say %q", body, err, says)
		}
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, FileName), []byte(`{`+base+`, "graphs": {"decode": {"file": "decode.onnx"}}}`), 0o644)
	if _, err := Read(dir); err != nil {
		t.Fatal(err)
	}
}
