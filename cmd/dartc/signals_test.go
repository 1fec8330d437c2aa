package main

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startDartc starts dartc as a child process with stderr piped.
func startDartc(t *testing.T, args ...string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "DARTC_RUN_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe() // kept open: a command reading stdin blocks
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close() })
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	return cmd, bufio.NewReader(stderr)
}

func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return exit.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(30 * time.Second):
		t.Fatal("dartc did not exit after SIGINT")
	}
	return 0
}

// TestSIGINTExits130: SIGINT ends any command with status 130 and one
// line on stderr; a command that stops gracefully (search serve) finishes
// its shutdown first.
func TestSIGINTExits130(t *testing.T) {
	t.Run("blocked command", func(t *testing.T) {
		cmd, stderr := startDartc(t, "tokenize") // reads the open stdin
		time.Sleep(500 * time.Millisecond)
		cmd.Process.Signal(os.Interrupt)
		rest, _ := io.ReadAll(stderr)
		if code := exitCode(t, cmd); code != 130 {
			t.Fatalf("exit %d, want 130; stderr %q", code, rest)
		}
		if string(rest) != "dartc: interrupted (SIGINT)\n" {
			t.Fatalf("stderr %q, want the one line", rest)
		}
	})
	t.Run("graceful command", func(t *testing.T) {
		idx := filepath.Join(t.TempDir(), "i.bm25")
		if msg, code := dartcProcess(t, "search", "index", "--corpus", "../../retrieval/testdata/small.jsonl", "-o", idx); code != 0 {
			t.Fatalf("index: %s", msg)
		}
		cmd, stderr := startDartc(t, "search", "serve", "--index", idx, "--addr", "127.0.0.1:0")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for ctx.Err() == nil {
			line, err := stderr.ReadString('\n')
			if err != nil {
				t.Fatalf("serve ended before serving: %v", err)
			}
			if strings.Contains(line, "serving") {
				break
			}
		}
		cmd.Process.Signal(syscall.SIGINT)
		rest, _ := io.ReadAll(stderr)
		if code := exitCode(t, cmd); code != 130 {
			t.Fatalf("exit %d, want 130; stderr %q", code, rest)
		}
		lines := strings.Split(strings.TrimSpace(string(rest)), "\n")
		if last := lines[len(lines)-1]; last != "dartc: interrupted (SIGINT)" || !strings.Contains(string(rest), "stopped") {
			t.Fatalf("stderr %q: want the server's stop log, then one line", rest)
		}
	})
}

// TestSIGINTDuringCompile: a compile stopped by SIGINT leaves no
// temporary directory behind. The tokenizer's tokenizer.json is a named
// pipe nobody writes, so the compile blocks reading it after the graphs are
// written into the temporary directory: the signal lands mid-way.
func TestSIGINTDuringCompile(t *testing.T) {
	dir := t.TempDir()
	if msg, code := dartcProcess(t, "models", "synth", "--preset", "tiny", "--layers", "1", "-o", filepath.Join(dir, "src")); code != 0 {
		t.Fatalf("synth: %s", msg)
	}
	tok := filepath.Join(dir, "tok")
	os.Mkdir(tok, 0o755)
	if err := syscall.Mkfifo(filepath.Join(tok, "tokenizer.json"), 0o644); err != nil {
		t.Fatal(err)
	}
	outParent := filepath.Join(dir, "compiled")
	cmd, stderr := startDartc(t, "compile", filepath.Join(dir, "src", "model.onnx"), "--tokenizer", tok,
		"-o", filepath.Join(outParent, "out"))
	tmps := func() []string {
		m, _ := filepath.Glob(filepath.Join(outParent, ".out.tmp-*"))
		return m
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(tmps()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("compile made no temporary directory in 60 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Wait for the graphs: the compile then blocks on the pipe.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if m := tmps(); len(m) == 1 {
			if _, err := os.Stat(filepath.Join(m[0], "train.onnx")); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no train.onnx in %v after 60 s", tmps())
		}
	}
	cmd.Process.Signal(os.Interrupt)
	rest, _ := io.ReadAll(stderr)
	if code := exitCode(t, cmd); code != 130 {
		t.Fatalf("exit %d, want 130; stderr %q", code, rest)
	}
	if left := tmps(); len(left) != 0 {
		t.Fatalf("the interrupted compile left %v behind", left)
	}
	if _, err := os.Stat(filepath.Join(outParent, "out")); !os.IsNotExist(err) {
		t.Fatalf("the interrupted compile made its output directory (stat: %v)", err)
	}
}

// TestSIGINTDuringTrainStartUp: a signal while train is still starting
// (opening the index and the sessions, calibrating) stops it there with
// status 130 and no step taken; it used to be absorbed, the run trained to
// the end and then reported the interruption. The signal is sent as soon as
// the trainer has opened its sessions (run.json appears).
func TestSIGINTDuringTrainStartUp(t *testing.T) {
	p := demoTrainSetup(t)
	cmd, stderr := startDartc(t, "train", "--model", p("compiled"), "--data", "../../data/demo/hotpotqa_val.jsonl",
		"--search", p("index.bm25"), "-o", p("run"), "--steps", "3", "--prompts", "1", "--group", "2", "--max-turn-tokens", "8", "--no-progress")
	// run.json is written once the trainer's sessions are open; the
	// calibration and a timed decode step follow before the first step.
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		if _, err := os.Stat(p("run/run.json")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("train did not start")
		}
	}
	cmd.Process.Signal(os.Interrupt)
	rest, _ := io.ReadAll(stderr)
	if code := exitCode(t, cmd); code != 130 {
		t.Fatalf("exit %d, want 130; stderr %q", code, rest)
	}
	if strings.Contains(string(rest), "step 1/") {
		t.Errorf("trained after the signal:\n%s", rest)
	}
	lines := strings.Split(strings.TrimSpace(string(rest)), "\n")
	if last := lines[len(lines)-1]; !strings.HasPrefix(last, "dartc: interrupted (SIGINT)") {
		t.Errorf("last line %q, want the interruption", last)
	}
	if _, err := os.Stat(p("run/checkpoints")); err == nil {
		t.Error("a checkpoint was written")
	}
}
