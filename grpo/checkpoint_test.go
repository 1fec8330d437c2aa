package grpo

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dartc/dartc/eval"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/trajectory"
)

// Environment of the checkpoint-writing child process.
const (
	childEnv      = "GRPO_CHECKPOINT_CHILD" // the run directory
	childModelEnv = "GRPO_CHECKPOINT_MODEL"
	childMarker   = "child-is-writing"
)

// checkpointChild resumes the run, trains one step and starts writing its
// checkpoint, announcing (by a marker file) that the temporary directory
// holds the adapters and the optimizer state, then hangs until killed.
func checkpointChild(run string) int {
	fail := func(err error) int {
		os.WriteFile(filepath.Join(run, "child-error"), []byte(err.Error()), 0o644)
		return 3
	}
	if _, err := runtime.Init(); err != nil {
		return fail(err)
	}
	model := os.Getenv(childModelEnv)
	dec, err := runtime.NewDecoderFromManifest(model, nil)
	if err != nil {
		return fail(err)
	}
	tr, err := New(Options{Model: model, Run: run, Config: toyTrainConfig(), Data: toyData(5), Resume: true,
		Roller: &toyRoller{dec: dec, newTok: 8}, Reward: lowTokenReward})
	if err != nil {
		return fail(err)
	}
	if _, err := tr.Step(context.Background()); err != nil {
		return fail(err)
	}
	checkpointHook = func(file string) error {
		if file == OptimizerFile {
			os.WriteFile(filepath.Join(run, childMarker), nil, 0o644)
			select {} // killed here, between the temp writes and the rename
		}
		return nil
	}
	if _, err := tr.Checkpoint(); err != nil {
		return fail(err)
	}
	return fail(errors.New("the checkpoint completed; the hook did not stop it"))
}

// firstCheckpoint trains one step and checkpoints it, returning the adapters.
func firstCheckpoint(t *testing.T, dir, run string) map[string]*runtime.Tensor {
	t.Helper()
	tr, err := New(Options{Model: dir, Run: run, Config: toyTrainConfig(), Data: toyData(5),
		Roller: newToyRoller(t, dir, 8), Reward: lowTokenReward})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if _, err := tr.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	return adaptersOf(t, tr)
}

func sameAdapters(t *testing.T, want, got map[string]*runtime.Tensor) {
	t.Helper()
	for n, w := range want {
		if !bytes.Equal(w.Bytes(), got[n].Bytes()) {
			t.Fatalf("adapter %s differs from the checkpointed one", n)
		}
	}
}

// TestKilledCheckpointWrite: a process killed with SIGKILL while it writes
// a checkpoint leaves the previous checkpoint the newest, loadable and
// unchanged; the next write removes the leftover.
func TestKilledCheckpointWrite(t *testing.T) {
	dir := toyModel(t)
	run := t.TempDir()
	want := firstCheckpoint(t, dir, run)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+run, childModelEnv+"="+dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	marker := filepath.Join(run, childMarker)
	for {
		if _, err := os.Stat(marker); err == nil {
			break
		}
		select {
		case err := <-exited:
			msg, _ := os.ReadFile(filepath.Join(run, "child-error"))
			t.Fatalf("the child exited before writing (%v): %s", err, msg)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	<-exited

	ents, _ := os.ReadDir(filepath.Join(run, CheckpointsDir))
	partial := ""
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), tmpPre+CheckpointName(2)) {
			partial = filepath.Join(run, CheckpointsDir, e.Name())
		}
	}
	if partial == "" {
		t.Fatalf("no partial checkpoint left by the killed writer: %v", ents)
	}
	if _, err := os.Stat(filepath.Join(partial, OptimizerFile)); err != nil {
		t.Fatalf("the writer was killed before the optimizer state was written: %v", err)
	}
	ck, err := LatestCheckpoint(run)
	if err != nil || filepath.Base(ck) != CheckpointName(1) {
		t.Fatalf("newest checkpoint %q (%v), want %s", ck, err, CheckpointName(1))
	}
	tr, err := New(Options{Model: dir, Run: run, Config: toyTrainConfig(), Data: toyData(5), Resume: true,
		Roller: newToyRoller(t, dir, 8), Reward: lowTokenReward})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if tr.State().Step != 1 {
		t.Fatalf("resumed at step %d, want 1", tr.State().Step)
	}
	sameAdapters(t, want, adaptersOf(t, tr))
	if _, err := tr.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(partial); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the leftover %s survived the next write: %v", partial, err)
	}
}

// TestFailedCheckpointWrite: an error between the temporary writes and the
// rename leaves no new checkpoint and no temporary directory.
func TestFailedCheckpointWrite(t *testing.T) {
	dir := toyModel(t)
	run := t.TempDir()
	want := firstCheckpoint(t, dir, run)
	tr, err := New(Options{Model: dir, Run: run, Config: toyTrainConfig(), Data: toyData(5), Resume: true,
		Roller: newToyRoller(t, dir, 8), Reward: lowTokenReward})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if _, err := tr.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	diskFull := errors.New("no space left on device")
	checkpointHook = func(file string) error {
		if file == StateFile {
			return diskFull
		}
		return nil
	}
	defer func() { checkpointHook = nil }()
	if _, err := tr.Checkpoint(); !errors.Is(err, diskFull) {
		t.Fatalf("Checkpoint: %v, want the injected error", err)
	}
	ents, _ := os.ReadDir(filepath.Join(run, CheckpointsDir))
	if len(ents) != 1 || ents[0].Name() != CheckpointName(1) {
		t.Fatalf("checkpoints after a failed write: %v", ents)
	}
	back, err := New(Options{Model: dir, Run: run, Config: toyTrainConfig(), Data: toyData(5), Resume: true,
		Roller: newToyRoller(t, dir, 8), Reward: lowTokenReward})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	sameAdapters(t, want, adaptersOf(t, back))
}

// TestNonFiniteSkipsAndStops: rollouts whose sampled log-probs are NaN make
// the loss and gradients NaN; the update is skipped (adapters unchanged)
// and logged in the metrics, and max_nonfinite in a row stop the run with
// ErrNonFinite and the last checkpoint intact.
func TestNonFiniteSkipsAndStops(t *testing.T) {
	dir := toyModel(t)
	run := t.TempDir()
	cfg := toyTrainConfig()
	cfg.Steps, cfg.CheckpointEvery, cfg.MaxNonFinite, cfg.KeepCheckpoints = 8, 1, 2, 10
	roller := newToyRoller(t, dir, 8)
	bad := map[int]bool{2: true, 4: true, 5: true}
	roller.corrupt = func(call int, trajs []*trajectory.Trajectory) {
		if bad[call] {
			trajs[0].LogProbs[trajs[0].PromptLen] = math.NaN()
		}
	}
	var adapters []map[string]*runtime.Tensor
	var tr *Trainer
	tr, err := New(Options{Model: dir, Run: run, Config: cfg, Data: toyData(5), Roller: roller, Reward: lowTokenReward,
		OnStep: func(Metrics) { adapters = append(adapters, adaptersOf(t, tr)) }})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	err = tr.Run(context.Background())
	if !errors.Is(err, ErrNonFinite) {
		t.Fatalf("Run: %v, want ErrNonFinite", err)
	}
	t.Log(err)
	if tr.State().Step != 5 || tr.State().Skipped != 3 {
		t.Fatalf("stopped at %+v, want step 5 with 3 skipped updates", tr.State())
	}
	rows, err := ReadMetrics(filepath.Join(run, MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range rows {
		if m.NonFinite != bad[i+1] {
			t.Errorf("step %d: nonfinite %v, want %v", m.Step, m.NonFinite, bad[i+1])
		}
	}
	if len(rows) != 5 || !strings.Contains(strings.Join(rows[1].NaNFields, ","), "loss") {
		t.Errorf("metrics rows %d, step 2 non-finite fields %v: want 5 rows and the loss named", len(rows), rows[1].NaNFields)
	}
	sameAdapters(t, adapters[0], adapters[1]) // step 2 skipped
	sameAdapters(t, adapters[3], adapters[4]) // step 5 skipped
	ck, err := LatestCheckpoint(run)
	if err != nil || filepath.Base(ck) != CheckpointName(4) {
		t.Fatalf("newest checkpoint %q (%v), want %s", ck, err, CheckpointName(4))
	}
	back, err := New(Options{Model: dir, Run: run, Config: cfg, Data: toyData(5), Resume: true, Roller: roller, Reward: lowTokenReward})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	sameAdapters(t, adapters[3], adaptersOf(t, back))
}

// failingRoller fails from call `from` on, as the agent loop does when the
// retriever stops answering after its retries.
type failingRoller struct {
	*toyRoller
	from int
	n    int
}

var errRetrieverDown = errors.New("retrieve: connection refused after 3 attempts")

func (f *failingRoller) Rollout(ctx context.Context, ex []eval.Example, group int, ad map[string]*runtime.Tensor, seed uint64) ([]*trajectory.Trajectory, error) {
	f.n++
	if f.n >= f.from {
		return nil, errRetrieverDown
	}
	return f.toyRoller.Rollout(ctx, ex, group, ad, seed)
}

// TestRolloutFailureStopsCleanly: a rollout error ends the run with that
// error, no partial step (state, metrics and checkpoints are those of the
// last completed step), and the run resumes from its checkpoint.
func TestRolloutFailureStopsCleanly(t *testing.T) {
	dir := toyModel(t)
	run := t.TempDir()
	cfg := toyTrainConfig()
	cfg.Steps, cfg.CheckpointEvery = 5, 2
	tr, err := New(Options{Model: dir, Run: run, Config: cfg, Data: toyData(5), Reward: lowTokenReward,
		Roller: &failingRoller{toyRoller: newToyRoller(t, dir, 8), from: 4}})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Run(context.Background()); !errors.Is(err, errRetrieverDown) {
		t.Fatalf("Run: %v, want the retriever's error", err)
	}
	if tr.State().Step != 3 {
		t.Fatalf("state after the failure: %+v, want step 3", tr.State())
	}
	rows, err := ReadMetrics(filepath.Join(run, MetricsFile))
	if err != nil || len(rows) != 3 {
		t.Fatalf("metrics: %d rows (%v), want 3", len(rows), err)
	}
	back, err := New(Options{Model: dir, Run: run, Config: cfg, Data: toyData(5), Resume: true, Reward: lowTokenReward,
		Roller: newToyRoller(t, dir, 8)})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if back.State().Step != 2 {
		t.Fatalf("resumed at step %d, want the checkpoint of step 2", back.State().Step)
	}
	if rows, _ := ReadMetrics(filepath.Join(run, MetricsFile)); len(rows) != 2 {
		t.Fatalf("resuming kept %d metrics rows, want 2 (step 3 is replayed)", len(rows))
	}
	if err := back.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// adaptersOf reads the trainer's adapters back, failing the test when the
// read-back does.
func adaptersOf(t *testing.T, tr *Trainer) map[string]*runtime.Tensor {
	t.Helper()
	a, err := tr.Adapters()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestOverflowingGradNormSkips: old log-probs 60 nats too low (stale or
// corrupted ones) make a finite loss whose gradients are finite one by
// one but whose Σ g² overflows float32: adamw.onnx's norm is +Inf and its
// clip factor 0. The update must be skipped like a non-finite gradient —
// adapters, moments and the step count left alone — on the host and the
// resident paths; it used to be applied (moments decayed, t advanced).
func TestOverflowingGradNormSkips(t *testing.T) {
	dir := toyModel(t)
	for _, host := range []bool{true, false} {
		cfg := toyTrainConfig()
		cfg.Steps = 1
		roller := newToyRoller(t, dir, 8)
		roller.corrupt = staleOldLogprobs(60)
		tr, err := New(Options{Model: dir, Run: t.TempDir(), Config: cfg, Data: toyData(5), Roller: roller, Reward: lowTokenReward, HostTensors: host})
		if err != nil {
			t.Fatal(err)
		}
		before := adaptersOf(t, tr)
		met, err := tr.Step(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		after := adaptersOf(t, tr)
		tr.Close()
		if !math.IsInf(met.GradNorm, 1) {
			t.Fatalf("host %v: grad_norm %g, want +Inf: the case does not overflow", host, met.GradNorm)
		}
		if !met.NonFinite || tr.State().Skipped != 1 || tr.State().Update != 0 {
			t.Errorf("host %v: grad_norm +Inf: nonfinite %v, skipped %d, update %d; want the update skipped", host, met.NonFinite, tr.State().Skipped, tr.State().Update)
		}
		for n := range before {
			if !bytes.Equal(before[n].Bytes(), after[n].Bytes()) {
				t.Errorf("host %v: %s changed by a skipped update", host, n)
				break
			}
		}
	}
}
