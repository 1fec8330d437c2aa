package benchcmp

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/eval/stats"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
)

// workerEnv makes the test binary the dartc worker (TestMain). With
// workerModelEnv set, a load without a model loads that one: the test
// then stands the dartc worker in for the PyTorch side too.
const (
	workerEnv      = "BENCHCMP_TEST_WORKER"
	workerModelEnv = "BENCHCMP_TEST_WORKER_MODEL"
)

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		var r io.Reader = os.Stdin
		if dir := os.Getenv(workerModelEnv); dir != "" {
			pr, pw := io.Pipe()
			go func() {
				sc := bufio.NewScanner(os.Stdin)
				sc.Buffer(make([]byte, 1<<20), 1<<26)
				for sc.Scan() {
					var req map[string]any
					line := sc.Bytes()
					if json.Unmarshal(line, &req) == nil && req["op"] == OpLoad && req["model"] == nil {
						req["model"] = dir
						line, _ = json.Marshal(req)
					}
					pw.Write(append(line, '\n'))
				}
				pw.Close()
			}()
			r = pr
		}
		if err := Serve(r, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// tinyModel synthesizes a 2-layer tiny Qwen2 and compiles its train and
// logprobs graphs.
func tinyModel(t *testing.T) (string, *manifest.Manifest) {
	t.Helper()
	orttest.Init(t)
	return compileTiny(t, 3)
}

// compileTiny compiles the tiny Qwen2 preset with random weights of the
// given seed (decode, logprobs and train graphs) into a new directory.
func compileTiny(t *testing.T, seed uint64) (string, *manifest.Manifest) {
	t.Helper()
	cfg, err := qwen2.Preset("tiny")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	res, err := synth.Synthesize(cfg, filepath.Join(dir, "src"), synth.Options{Seed: seed, Weights: synth.WeightsRandom})
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	man, err := compiler.Compile(res.ModelPath, out, compiler.Options{Rank: 4, Alpha: 8,
		Graphs: []string{manifest.GraphDecode, manifest.GraphLogprobs, manifest.GraphTrain}})
	if err != nil {
		t.Fatal(err)
	}
	return out, man
}

func startTestWorker(t *testing.T, extraEnv ...string) *Worker {
	t.Helper()
	env := append(os.Environ(), workerEnv+"=1")
	w, err := StartWorker("dartc", []string{os.Args[0]}, append(env, extraEnv...), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func call(t *testing.T, w *Worker, req Request) Response {
	t.Helper()
	r, err := w.Call(req)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// grpoLoss is the GRPO loss of passes.GRPOHead computed here from the
// log-probs, with entropy_coeff 0 (MakeBatch's).
func grpoLoss(b *Batch, lp []float64) float64 {
	sum := 0.0
	for i, w := range b.TokenWeights {
		if w == 0 {
			continue
		}
		adv := float64(b.Advantages[i])
		ratio := math.Exp(lp[i] - float64(b.OldLogprobs[i]))
		clipped := math.Min(math.Max(ratio, 1-float64(b.ClipLow)), 1+float64(b.ClipHigh))
		pg := math.Max(-adv*ratio, -adv*clipped)
		d := float64(b.RefLogprobs[i]) - lp[i]
		k3 := math.Min(math.Max(math.Exp(d)-d-1, -10), 10)
		sum += float64(w) * (pg + float64(b.KLCoef)*k3)
	}
	return sum
}

// TestDartcWorker drives the dartc worker process over the protocol: the
// train step's loss must be the GRPO formula applied to the log-probs the
// same worker answers (adapters start with B = 0, so both graphs compute
// the base model), requests out of order get errors that say what to send,
// and the peak RSS resets.
func TestDartcWorker(t *testing.T) {
	dir, man := tinyModel(t)
	w := startTestWorker(t)
	batch, err := MakeBatch(1, man.Model.Vocab, 2, 9)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Call(Request{Op: OpTrain, Name: "b"}); err == nil || !strings.Contains(err.Error(), "prepare") {
		t.Fatalf("train before prepare: %v, want an error that says to send prepare", err)
	}
	if _, err := w.Call(Request{Op: "fly"}); err == nil || !strings.Contains(err.Error(), `unknown op "fly"`) {
		t.Fatalf("unknown op: %v", err)
	}
	info := call(t, w, Request{Op: OpLoad, Model: dir, Threads: 1, Seed: 2})
	if info.Info["side"] != "dartc" || info.Info["rank"] != float64(4) {
		t.Fatalf("load answered %v", info.Info)
	}
	call(t, w, Request{Op: OpBatch, Name: "b", Batch: batch})
	call(t, w, Request{Op: OpPrepare, Graph: manifest.GraphLogprobs})
	lp := call(t, w, Request{Op: OpLogprobs, Name: "b", Values: true})
	if len(lp.Logprobs) != 18 || lp.Seconds <= 0 {
		t.Fatalf("logprobs: %d values, %v s", len(lp.Logprobs), lp.Seconds)
	}
	for i, v := range lp.Logprobs {
		if last := i%9 == 8; (last && v != 0) || (!last && !(v < 0)) {
			t.Fatalf("log-prob %d = %v", i, v)
		}
	}
	if _, err := w.Call(Request{Op: OpTrain, Name: "b"}); err == nil {
		t.Fatal("train on the logprobs session: no error")
	}
	call(t, w, Request{Op: OpPrepare, Graph: manifest.GraphTrain})
	reset := call(t, w, Request{Op: OpResetPeak})
	if reset.PeakRSSKiB <= 0 || reset.PeakRSSKiB > reset.RSSKiB+1024 {
		t.Fatalf("after the reset: peak %d KiB, resident %d KiB", reset.PeakRSSKiB, reset.RSSKiB)
	}
	tr := call(t, w, Request{Op: OpTrain, Name: "b", GradNorm: true})
	want := grpoLoss(batch, lp.Logprobs)
	if tr.Loss == nil || math.Abs(*tr.Loss-want) > 1e-4*(1+math.Abs(want)) {
		t.Fatalf("train loss %v, the GRPO formula over the log-probs gives %v", tr.Loss, want)
	}
	if tr.GradNorm == nil || !(*tr.GradNorm > 0) {
		t.Fatalf("gradient norm %v: want > 0 (B's gradients are not zero)", tr.GradNorm)
	}
	if _, err := w.Call(Request{Op: OpTrain, Name: "other"}); err == nil || !strings.Contains(err.Error(), `no batch named "other"`) {
		t.Fatalf("unknown batch: %v", err)
	}
	bad := *batch
	bad.InputIDs = bad.InputIDs[:3]
	if _, err := w.Call(Request{Op: OpBatch, Name: "bad", Batch: &bad}); err == nil || !strings.Contains(err.Error(), "input_ids has 3 values") {
		t.Fatalf("short batch: %v", err)
	}
}

// TestCompare runs the driver end to end with the dartc worker on both
// sides: the check passes, every timed step is there, the ratios are
// computed from them.
func TestCompare(t *testing.T) {
	dir, _ := tinyModel(t)
	self := []string{os.Args[0]}
	var log strings.Builder
	cfg := Config{Model: dir, Checkpoint: "unused", Label: "tiny", Rows: 2, Seqs: []int{8, 12},
		Phases: []string{PhaseTrain, PhaseLogprobs}, Warmup: 1, Reps: 3, Threads: 1, TorchLoRA: "peft",
		DartcWorker: self, TorchWorker: self, Env: append(os.Environ(), workerEnv+"=1", workerModelEnv+"="+dir), Log: &log}
	var seen []Result
	res, err := Compare(cfg, func(r Result) error { seen = append(seen, r); return nil })
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if len(res) != 4 || len(seen) != 4 {
		t.Fatalf("%d results (%d passed on), want 4", len(res), len(seen))
	}
	for i, r := range res {
		wantPhase := []string{PhaseTrain, PhaseLogprobs}[i%2]
		if r.Phase != wantPhase || r.Seq != cfg.Seqs[i/2] || len(r.Dartc.Seconds) != 3 || len(r.Torch.Seconds) != 3 {
			t.Fatalf("result %d: %s %d, %d and %d timings", i, r.Phase, r.Seq, len(r.Dartc.Seconds), len(r.Torch.Seconds))
		}
		if r.RatioMedian != stats.Describe(r.Dartc.Seconds).Median/stats.Describe(r.Torch.Seconds).Median || r.Dartc.PeakRSSMiB <= 0 || r.Torch.PeakRSSMiB <= 0 {
			t.Fatalf("result %d: ratio %v, peaks %v %v", i, r.RatioMedian, r.Dartc.PeakRSSMiB, r.Torch.PeakRSSMiB)
		}
		if !strings.Contains(r.Check, "|Δ| 0") {
			t.Fatalf("result %d: the same model on both sides should agree exactly: %s", i, r.Check)
		}
	}
	row := Row(res[0])
	if !strings.HasPrefix(row, "| tiny | train step | 2 × 8 |") {
		t.Fatalf("row %q", row)
	}
	var sb strings.Builder
	if err := WriteJSONL(&sb, res[1]); err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal([]byte(sb.String()), &back); err != nil || back.Phase != PhaseLogprobs || back.Seq != 8 {
		t.Fatalf("JSONL %q: %v", sb.String(), err)
	}
}

// TestCompareRejectsDifferentModels: a side that computes another model
// (the same shape with other random weights) stops the comparison before
// any timing.
func TestCompareRejectsDifferentModels(t *testing.T) {
	dir, _ := tinyModel(t)
	diff, _ := compileTiny(t, 9)
	self := []string{os.Args[0]}
	c := Config{Model: dir, Checkpoint: "unused", Label: "tiny", Rows: 1, Seqs: []int{6}, Phases: []string{PhaseLogprobs},
		Warmup: 0, Reps: 1, Threads: 1, DartcWorker: self, TorchWorker: self,
		Env: append(os.Environ(), workerEnv+"=1", workerModelEnv+"="+diff)}
	if _, err := Compare(c, nil); err == nil || !strings.Contains(err.Error(), "log-probs differ") {
		t.Fatalf("different models: %v, want the log-probs check to fail", err)
	}
}

func TestParseResponse(t *testing.T) {
	for _, line := range []string{"hello\n", "[1, 2]\n", `{"seconds": 1}` + "\n"} {
		if _, err := ParseResponse([]byte(line)); err == nil {
			t.Errorf("%q: no error", line)
		}
	}
	r, err := ParseResponse([]byte(`{"ok": true, "seconds": 1.5, "loss": -2, "peak_rss_kib": 10, "torch": "2.15.0"}`))
	if err != nil || !r.OK || r.Seconds != 1.5 || *r.Loss != -2 || r.PeakRSSKiB != 10 || r.Info["torch"] != "2.15.0" {
		t.Fatalf("%+v %v", r, err)
	}
}

// TestStats: the timings' min and median as Compare takes them.
func TestStats(t *testing.T) {
	if m := stats.Describe([]float64{3, 1, 2}).Median; m != 2 {
		t.Errorf("median of 3 1 2 = %v", m)
	}
	if m := stats.Describe([]float64{4, 1, 3, 2}).Median; m != 2.5 {
		t.Errorf("median of 4 1 3 2 = %v", m)
	}
	if m := stats.Describe([]float64{4, 1, 3}).Min; m != 1 {
		t.Errorf("min = %v", m)
	}
	if !math.IsNaN(stats.Describe(nil).Median) {
		t.Error("median of nothing is not NaN")
	}
}

func TestMakeBatch(t *testing.T) {
	b, err := MakeBatch(5, 100, 3, 40)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Validate(100); err != nil {
		t.Fatal(err)
	}
	if got := b.WeightedPositions(); got != 3*39 {
		t.Errorf("weighted positions %v, want %d (all but each row's last)", got, 3*39)
	}
	if b.RoleIDs[RoleRun-1] != 0 || b.RoleIDs[RoleRun] != 1 || b.RoleIDs[2*RoleRun] != 0 {
		t.Errorf("roles do not alternate in runs of %d: %v", RoleRun, b.RoleIDs[:40])
	}
	if b.Advantages[0] != b.Advantages[39] || b.Advantages[0] == b.Advantages[40] {
		t.Error("advantages are not one per row")
	}
	if _, err := MakeBatch(1, 100, 1, 1); err == nil {
		t.Error("a 1-token batch: no error")
	}
	if err := b.Validate(10); err == nil {
		t.Error("ids beyond a 10-id vocabulary: no error")
	}
}

func TestParseStatus(t *testing.T) {
	st := []byte("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n")
	if v, err := parseStatusKiB(st, "VmHWM"); err != nil || v != 2048 {
		t.Fatalf("VmHWM %v %v", v, err)
	}
	if _, err := parseStatusKiB(st, "VmSwap"); err == nil {
		t.Fatal("missing field: no error")
	}
}
