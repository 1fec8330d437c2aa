package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestModelsPresets(t *testing.T) {
	out, err := runDartc(t, "", "models", "presets")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tiny", "qwen2.5-0.5b", "qwen2.5-3b    36      2048", "qwen2.5-7b", "151936"} {
		if !strings.Contains(out, want) {
			t.Errorf("presets output lacks %q:\n%s", want, out)
		}
	}
}

func TestModelsSynth(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tiny")
	out, err := runDartc(t, "", "models", "synth", "--preset", "tiny", "--kv-cache", "--dtype", "float64",
		"--linear-form", "gemm", "--layers", "1", "--storage", "external", "-o", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "1 layers, float64, gemm form, kv cache true") {
		t.Errorf("output %q", out)
	}
	for _, f := range []string{"model.onnx", "model.onnx.data"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	for _, bad := range [][]string{
		{"--preset", "qwen9", "-o", dir + "x"},
		{"--dtype", "float8", "-o", dir + "x"},
		{"--linear-form", "packed", "-o", dir + "x"},
		{"--layers", "-1", "-o", dir + "x"},
		{"-o", dir}, // exists
	} {
		if _, err := runDartc(t, "", append([]string{"models", "synth"}, bad...)...); err == nil {
			t.Errorf("models synth %v succeeded", bad)
		}
	}
	if _, err := os.Stat(dir + "x"); !os.IsNotExist(err) {
		t.Errorf("a failed synth left %s behind", dir+"x")
	}
}

// TestModelsSynthRefusesWhatMemoryCannotHold: random weights are drawn in
// memory; a model far beyond any machine's (a 2-billion-token vocabulary
// on the 7B shape: about 57 TB) is refused before anything is drawn or
// written, where it used to be killed by the kernel without a message.
func TestModelsSynthRefusesWhatMemoryCannotHold(t *testing.T) {
	out := filepath.Join(t.TempDir(), "big")
	msg, code := dartcProcess(t, "models", "synth", "--preset", "qwen2.5-7b", "--vocab", "2000000000", "--weights", "random", "-o", out)
	if code == 0 || !strings.Contains(msg, "--weights zero") || !strings.Contains(msg, "available") {
		t.Fatalf("exit %d: %s", code, msg)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("the refused synth left %s (%v)", out, err)
	}
}
