package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMain lets a test run the real command as a child process: with
// DARTC_RUN_MAIN=1 the test binary is dartc.
func TestMain(m *testing.M) {
	if os.Getenv("DARTC_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// dartcProcess runs dartc in a child process and returns its stderr and
// exit code.
func dartcProcess(t *testing.T, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "DARTC_RUN_MAIN=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return stderr.String(), exit.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return stderr.String(), 0
}

const fixtures = "../../testdata/onnx"

// TestCompileBadInput: each bad input exits non-zero with an error that
// names the problem, and leaves no output directory behind (nor the
// parent folders it made for one).
func TestCompileBadInput(t *testing.T) {
	dir := t.TempDir()
	notONNX := filepath.Join(dir, "notes.onnx")
	os.WriteFile(notONNX, []byte("not a model"), 0o644)
	truncated := filepath.Join(dir, "truncated.onnx")
	b, _ := os.ReadFile(filepath.Join(fixtures, "ortgenai-static-scatter-bias-decoder/model.onnx"))
	os.WriteFile(truncated, b[:len(b)/3], 0o644)
	missingData := filepath.Join(dir, "nodata")
	os.MkdirAll(missingData, 0o755)
	b, _ = os.ReadFile(filepath.Join(fixtures, "ortgenai-tiny-random-llama-fp16/model.onnx"))
	os.WriteFile(filepath.Join(missingData, "model.onnx"), b, 0o644)
	existing := filepath.Join(dir, "existing")
	os.MkdirAll(existing, 0o755)
	scatter := filepath.Join(fixtures, "ortgenai-static-scatter-bias-decoder/model.onnx")

	cases := []struct {
		name string
		args []string
		says string
	}{
		{"not onnx", []string{"compile", notONNX, "-o", filepath.Join(dir, "o1")}, "not an ONNX model"},
		{"truncated", []string{"compile", truncated, "-o", filepath.Join(dir, "o2")}, "truncated"},
		{"missing data", []string{"compile", filepath.Join(missingData, "model.onnx"), "-o", filepath.Join(dir, "o3")}, "model.onnx.data"},
		{"no target", []string{"compile", filepath.Join(fixtures, "optimum-tiny-distilbert/model.onnx"), "-o", filepath.Join(dir, "o4")}, "no linear layer matched"},
		{"exists", []string{"compile", scatter, "--graphs", "decode", "-o", existing}, "--force"},
		{"no such file", []string{"compile", filepath.Join(dir, "absent.onnx"), "-o", filepath.Join(dir, "o5")}, "no such file"},
		{"no gradient rule", []string{"compile", scatter, "-o", filepath.Join(dir, "o6")}, "--graphs decode"},
		{"not onnx, nested output", []string{"compile", notONNX, "-o", filepath.Join(dir, "p", "q", "o7")}, "not an ONNX model"},
		{"infinite alpha", []string{"compile", scatter, "--graphs", "decode", "--alpha", "inf", "-o", filepath.Join(dir, "o8")}, "finite"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stderr, code := dartcProcess(t, c.args...)
			if code == 0 {
				t.Fatalf("exit code 0; stderr: %s", stderr)
			}
			if !strings.Contains(stderr, c.says) {
				t.Fatalf("stderr does not say %q:\n%s", c.says, stderr)
			}
		})
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		switch e.Name() {
		case "notes.onnx", "truncated.onnx", "nodata", "existing":
		default:
			t.Errorf("a failed compile left %s behind", e.Name())
		}
	}
}

func TestInspectJSON(t *testing.T) {
	out, err := runDartc(t, "", "inspect", filepath.Join(fixtures, "ortgenai-tiny-random-llama-fp16/model.onnx"), "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep map[string]any
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"inputs", "outputs", "ops", "targets", "external_data"} {
		if _, ok := rep[key]; !ok {
			t.Fatalf("inspect --json has no %q key", key)
		}
	}
	if n := len(rep["targets"].([]any)); n != 14 {
		t.Fatalf("inspect lists %d targets, want 7 per layer × 2", n)
	}
	if ops := rep["ops"].(map[string]any); ops["com.microsoft:MultiHeadAttention"] == nil {
		t.Fatalf("op histogram lacks the contrib ops: %v", ops)
	}
}

func TestCompileThenGradcheck(t *testing.T) {
	dir := t.TempDir()
	if _, err := runDartc(t, "", "models", "synth", "--preset", "tiny", "--layers", "1", "--dtype", "float64", "-o", filepath.Join(dir, "src")); err != nil {
		t.Fatal(err)
	}
	out, err := runDartc(t, "", "compile", filepath.Join(dir, "src", "model.onnx"), "-o", filepath.Join(dir, "out"), "--rank", "2", "--check")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "compiled 7 targets") {
		t.Fatalf("compile printed %q", out)
	}
	out, err = runDartc(t, "", "gradcheck", filepath.Join(dir, "out"), "--samples", "1", "--top", "2")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "ok: worst relative error") {
		t.Fatalf("gradcheck printed %q", out)
	}
}
