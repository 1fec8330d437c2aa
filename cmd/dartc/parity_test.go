package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestParityGradcheckRefuseBadCounts: a count below its minimum is refused
// by flag name with a non-zero exit (it used to run with the default while
// the output reported the value given), and the output reports the sizes
// that actually ran.
func TestParityGradcheckRefuseBadCounts(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	for _, args := range [][]string{
		{"models", "synth", "--preset", "tiny", "--layers", "1", "--kv-cache", "-o", filepath.Join(dir, "src")},
		{"compile", filepath.Join(dir, "src", "model.onnx"), "-o", out, "--rank", "2"},
	} {
		if o, err := runDartc(t, "", args...); err != nil {
			t.Fatalf("dartc %v: %v\n%s", args, err, o)
		}
	}
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"parity", out, "--device", "cpu", "--batch", "0"}, "--batch 0: must be ≥ 1"},
		{[]string{"parity", out, "--device", "cpu", "--seq", "-4"}, "--seq -4: must be ≥ 2"},
		{[]string{"parity", out, "--device", "cpu", "--seq", "1"}, "--seq 1: must be ≥ 2"},
		{[]string{"parity", out, "--device", "cpu", "--decode-steps", "-1"}, "--decode-steps -1: must be ≥ 0"},
		{[]string{"parity", out, "--device", "cpu", "--tolerance", "-1"}, "--tolerance -1: must be ≥ 0"},
		{[]string{"gradcheck", out, "--samples", "0"}, "--samples 0: must be ≥ 1"},
		{[]string{"gradcheck", out, "--samples", "-2"}, "--samples -2: must be ≥ 1"},
		{[]string{"gradcheck", out, "--top", "-1"}, "--top -1: must be ≥ 0"},
	} {
		if o, err := runDartc(t, "", c.args...); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("dartc %s: err = %v, want one saying %q\n%s", strings.Join(c.args, " "), err, c.says, o)
		}
	}
	if msg, code := dartcProcess(t, "parity", out, "--device", "cpu", "--batch", "0"); code != 1 || !strings.Contains(msg, "--batch 0") {
		t.Errorf("parity --batch 0: exit %d, stderr %q; want 1 and the flag named", code, msg)
	}

	o, err := runDartc(t, "", "parity", out, "--device", "cpu", "--batch", "1", "--seq", "4", "--decode-steps", "2")
	if err != nil {
		t.Fatalf("%v\n%s", err, o)
	}
	if !strings.Contains(o, "batch 1 × 4 tokens, 2 decode steps") || !strings.Contains(o, "2 of 2 generated tokens") {
		t.Errorf("parity --batch 1 --seq 4 --decode-steps 2 printed:\n%s", o)
	}
	o, err = runDartc(t, "", "parity", out, "--device", "cpu", "--batch", "1", "--seq", "4", "--decode-steps", "0")
	if err != nil {
		t.Fatalf("%v\n%s", err, o)
	}
	if !strings.Contains(o, "batch 1 × 4 tokens\n") || strings.Contains(o, "greedy decode") {
		t.Errorf("parity --decode-steps 0 printed:\n%s", o)
	}
	o, err = runDartc(t, "", "gradcheck", out, "--samples", "1", "--top", "1", "--tolerance", "1")
	if err != nil {
		t.Fatalf("%v\n%s", err, o)
	}
	if !strings.Contains(o, "1 direction each") {
		t.Errorf("gradcheck --samples 1 printed:\n%s", o)
	}
}
