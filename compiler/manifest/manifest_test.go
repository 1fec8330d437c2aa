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

// TestOlderManifestsOpenAdamWWithoutOptimizations: a directory compiled
// before ort_optimization was recorded reads as the trainer always opened
// its adamw.onnx; the other graphs keep what they record (ORT's default
// when nothing).
func TestOlderManifestsOpenAdamWWithoutOptimizations(t *testing.T) {
	dir := t.TempDir()
	body := `{"format": "dartc-artifacts/1", "adapters_file": "adapters.safetensors", "graphs": {` +
		`"train": {"file": "train.onnx"}, "logprobs": {"file": "logprobs.onnx", "ort_optimization": "disable_all"}, ` +
		`"adamw": {"file": "adamw.onnx"}}}`
	os.WriteFile(filepath.Join(dir, FileName), []byte(body), 0o644)
	m, err := Read(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Graphs[GraphAdamW].Optimization; got != OptimizationNone {
		t.Errorf("adamw: ort_optimization %q, want %q", got, OptimizationNone)
	}
	if got := m.Graphs[GraphTrain].Optimization; got != "" {
		t.Errorf("train: ort_optimization %q, want ORT's default", got)
	}
	if got := m.Graphs[GraphLogprobs].Optimization; got != OptimizationNone {
		t.Errorf("logprobs: ort_optimization %q, want the recorded %q", got, OptimizationNone)
	}
}
