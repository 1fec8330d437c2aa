package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/runtime"
)

// dartcOutput runs dartc in a child process with env changes ("K=V", or
// "K=" to unset K) and returns stdout, stderr and the exit code.
func dartcOutput(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	unset := map[string]bool{}
	for _, kv := range env {
		if strings.HasSuffix(kv, "=") {
			unset[strings.TrimSuffix(kv, "=")] = true
		}
	}
	for _, kv := range os.Environ() {
		if !unset[kv[:strings.IndexByte(kv, '=')]] {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for _, kv := range env {
		if !strings.HasSuffix(kv, "=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "DARTC_RUN_MAIN=1")
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return stdout.String(), stderr.String(), exit.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), 0
}

// TestVersionReportsCUDAProvider needs `make ort-gpu` (ONNX Runtime's CUDA
// 13 build in .cache/ort-gpu). On a machine without an NVIDIA GPU the CUDA
// provider must be reported present but unusable, with the reason; on a GPU
// host, present (usable, or unusable with a reason).
func TestVersionReportsCUDAProvider(t *testing.T) {
	gpuDir, _ := filepath.Abs(filepath.Join("..", "..", ".cache", "ort-gpu", runtime.ORTVersion))
	if _, err := os.Stat(filepath.Join(gpuDir, runtime.CUDAProviderLib)); err != nil {
		t.Fatalf("ONNX Runtime's CUDA build is not installed (%v): run `make ort-gpu`", err)
	}
	_, noGPU := os.Stat("/dev/nvidiactl")
	check := func(out string) {
		t.Helper()
		var cuda string
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "cuda: ") {
				cuda = line
			}
		}
		if !strings.Contains(out, "providers built in: ") || !strings.Contains(out, "CUDAExecutionProvider") ||
			!strings.Contains(out, "CPUExecutionProvider") || !strings.Contains(out, "cpu: usable") {
			t.Fatalf("version output lacks the provider list:\n%s", out)
		}
		if !strings.Contains(cuda, "present ("+filepath.Join(gpuDir, runtime.CUDAProviderLib)) && !strings.HasPrefix(cuda, "cuda: usable") {
			t.Fatalf("the CUDA provider in %s is not reported present:\n%s", gpuDir, out)
		}
		if noGPU != nil {
			if !strings.Contains(cuda, "unusable: missing") || !strings.Contains(cuda, "libcuda.so.1") {
				t.Fatalf("without a GPU the CUDA provider must be unusable, naming the driver library:\n%s", out)
			}
			if !strings.Contains(out, "driver R580") {
				t.Fatalf("no fix for the missing driver:\n%s", out)
			}
		}
		t.Log(out)
	}
	// The CPU library (make test's ONNXRUNTIME_SHARED_LIBRARY_PATH).
	out, stderr, code := dartcOutput(t, nil, "version")
	if code != 0 {
		t.Fatalf("dartc version: exit %d: %s", code, stderr)
	}
	check(out)
	// --device cuda loads the CUDA build from .cache/ort-gpu.
	out, stderr, code = dartcOutput(t, []string{runtime.LibraryEnv + "="}, "version", "--device", "cuda")
	if code != 0 {
		t.Fatalf("dartc version --device cuda: exit %d: %s", code, stderr)
	}
	if !strings.Contains(out, "onnxruntime "+runtime.ORTVersion+" ("+filepath.Join(gpuDir, "libonnxruntime.so.1")) {
		t.Fatalf("--device cuda did not load %s:\n%s", gpuDir, out)
	}
	check(out)
	if noGPU == nil {
		return
	}
	// A CUDA session fails, naming what is missing and how to get it.
	_, stderr, code = dartcOutput(t, []string{runtime.LibraryEnv + "="}, "run", "--device", "cuda", "--steps", "1",
		filepath.Join("..", "..", "runtime", "testdata", "static-scatter-bias-decoder", "model.onnx"))
	for _, want := range []string{"CUDA 13", "cuDNN 9", "libcuda.so.1", "nvidia-cudnn-cu13", "--device cpu"} {
		if code == 0 || !strings.Contains(stderr, want) {
			t.Fatalf("run --device cuda without a GPU: exit %d, stderr lacks %q:\n%s", code, want, stderr)
		}
	}
}
