package benchcmp

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/eval/stats"
)

// Phases a comparison can run.
const (
	PhaseTrain    = "train"    // train.onnx vs the PyTorch train step
	PhaseLogprobs = "logprobs" // logprobs.onnx vs the PyTorch forward under no_grad
)

// Config is one comparison: one model, some lengths and phases.
type Config struct {
	Model      string // dartc's compiled directory
	Checkpoint string // the Hugging Face checkpoint the model was exported from
	Label      string // the model's name in the output
	Rows       int    // batch size
	Seqs       []int  // sequence lengths
	Phases     []string
	Warmup     int // steps per side before timing
	Reps       int // timed steps per side
	Threads    int // ONNX Runtime's intra-op threads = torch's threads
	// Settle is a pause before every step, so that a step does not start
	// while the other side's threads still spin after theirs (OpenMP's
	// and ONNX Runtime's pools busy-wait for a while after a parallel
	// region).
	Settle    time.Duration
	Seed      uint64
	TorchLoRA string // peft, plain or dual
	Attn      string // transformers' attention implementation
	// DartcWorker and TorchWorker are the worker commands.
	DartcWorker, TorchWorker []string
	Env                      []string  // the workers' environment (nil: this process's)
	Log                      io.Writer // the workers' stderr and progress (nil: discarded)
}

// SideResult is one side's figures for one phase.
type SideResult struct {
	Seconds        []float64      `json:"seconds"` // the timed steps, in order
	Min            float64        `json:"min_s"`
	Median         float64        `json:"median_s"`
	BaseRSSMiB     float64        `json:"base_rss_mib"` // resident after loading, when the peak was reset
	PeakRSSMiB     float64        `json:"peak_rss_mib"` // peak over the phase's steps
	SessionSeconds float64        `json:"session_s,omitempty"`
	Info           map[string]any `json:"info"`
}

// Result is one phase of one length, both sides.
type Result struct {
	Model       string     `json:"model"`
	Phase       string     `json:"phase"`
	Rows        int        `json:"batch"`
	Seq         int        `json:"seq"`
	Threads     int        `json:"threads"`
	Warmup      int        `json:"warmup"`
	Reps        int        `json:"reps"`
	Dartc       SideResult `json:"dartc"`
	Torch       SideResult `json:"pytorch"`
	RatioMedian float64    `json:"ratio_median"` // dartc / PyTorch
	RatioMin    float64    `json:"ratio_min"`
	PeakRatio   float64    `json:"peak_rss_ratio"`
	Check       string     `json:"check"` // what agreed between the sides, and by how much
	LoadBefore  string     `json:"loadavg_before"`
	LoadAfter   string     `json:"loadavg_after"`
	Time        string     `json:"time"`
}

// Compare runs every (length, phase) of cfg and returns the results in
// order; each result is passed to each as it completes.
func Compare(cfg Config, each func(Result) error) ([]Result, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	man, err := manifest.Read(cfg.Model)
	if err != nil {
		return nil, err
	}
	var out []Result
	for _, seq := range cfg.Seqs {
		batch, err := MakeBatch(cfg.Seed, man.Model.Vocab, cfg.Rows, seq)
		if err != nil {
			return out, err
		}
		for _, ph := range cfg.Phases {
			cfg.logf("benchcmp: %s %s %d×%d: starting both workers\n", cfg.Label, ph, cfg.Rows, seq)
			r, err := runPhase(cfg, man, batch, ph)
			if err != nil {
				return out, err
			}
			out = append(out, r)
			if each != nil {
				if err := each(r); err != nil {
					return out, err
				}
			}
		}
	}
	return out, nil
}

func (cfg *Config) validate() error {
	var bad []string
	if cfg.Model == "" {
		bad = append(bad, "no compiled model directory")
	}
	if cfg.Checkpoint == "" {
		bad = append(bad, "no PyTorch checkpoint")
	}
	if cfg.Rows < 1 {
		bad = append(bad, fmt.Sprintf("batch %d < 1", cfg.Rows))
	}
	if len(cfg.Seqs) == 0 {
		bad = append(bad, "no sequence lengths")
	}
	for _, s := range cfg.Seqs {
		if s < 2 {
			bad = append(bad, fmt.Sprintf("sequence length %d < 2", s))
		}
	}
	if len(cfg.Phases) == 0 {
		bad = append(bad, "no phases")
	}
	for _, p := range cfg.Phases {
		if p != PhaseTrain && p != PhaseLogprobs {
			bad = append(bad, fmt.Sprintf("phase %q (want train or logprobs)", p))
		}
	}
	if cfg.Warmup < 0 || cfg.Reps < 1 {
		bad = append(bad, fmt.Sprintf("warm-up %d and reps %d: need ≥ 0 and ≥ 1", cfg.Warmup, cfg.Reps))
	}
	if len(cfg.DartcWorker) == 0 || len(cfg.TorchWorker) == 0 {
		bad = append(bad, "a worker command is missing")
	}
	if len(bad) > 0 {
		return fmt.Errorf("benchcmp: %s", strings.Join(bad, "; "))
	}
	return nil
}

func (cfg *Config) logf(format string, a ...any) {
	if cfg.Log != nil {
		fmt.Fprintf(cfg.Log, format, a...)
	}
}

// torchTargets maps the manifest's adapted linears to Qwen2 module names.
func torchTargets(man *manifest.Manifest) ([]string, error) {
	names := map[string]string{"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj",
		"gate": "gate_proj", "up": "up_proj", "down": "down_proj"}
	var out []string
	for _, tg := range man.LoRA.Targets {
		n, ok := names[tg.Kind]
		if !ok {
			return nil, fmt.Errorf("benchcmp: adapted linear %s has kind %q, which has no Qwen2 module name here", tg.Module, tg.Kind)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

func runPhase(cfg Config, man *manifest.Manifest, batch *Batch, phase string) (res Result, err error) {
	res = Result{Model: cfg.Label, Phase: phase, Rows: batch.Rows, Seq: batch.Seq, Threads: cfg.Threads,
		Warmup: cfg.Warmup, Reps: cfg.Reps, LoadBefore: loadavg(), Time: time.Now().UTC().Format(time.RFC3339)}
	targets, err := torchTargets(man)
	if err != nil {
		return res, err
	}
	env := cfg.Env
	if env == nil {
		env = os.Environ()
	}
	dw, err := StartWorker("dartc", cfg.DartcWorker, env, cfg.Log)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, dw.Close()) }()
	tw, err := StartWorker("pytorch", cfg.TorchWorker, env, cfg.Log)
	if err != nil {
		return res, err
	}
	defer func() { err = errors.Join(err, tw.Close()) }()

	d, err := dw.Call(Request{Op: OpLoad, Model: cfg.Model, Threads: cfg.Threads, Seed: cfg.Seed})
	if err != nil {
		return res, err
	}
	res.Dartc.Info = d.Info
	t, err := tw.Call(Request{Op: OpLoad, Checkpoint: cfg.Checkpoint, LoRA: cfg.TorchLoRA, Rank: man.LoRA.Rank,
		Alpha: man.LoRA.Alpha, Targets: targets, Threads: cfg.Threads, Attn: cfg.Attn, Seed: cfg.Seed})
	if err != nil {
		return res, err
	}
	res.Torch.Info = t.Info
	p, err := dw.Call(Request{Op: OpPrepare, Graph: phase})
	if err != nil {
		return res, err
	}
	res.Dartc.SessionSeconds = p.Seconds
	if _, err := tw.Call(Request{Op: OpPrepare, Graph: phase}); err != nil {
		return res, err
	}
	name := fmt.Sprintf("%dx%d", batch.Rows, batch.Seq)
	sides := []*Worker{dw, tw}
	results := []*SideResult{&res.Dartc, &res.Torch}
	for i, w := range sides {
		if _, err := w.Call(Request{Op: OpBatch, Name: name, Batch: batch}); err != nil {
			return res, err
		}
		r, err := w.Call(Request{Op: OpResetPeak})
		if err != nil {
			return res, err
		}
		results[i].BaseRSSMiB = float64(r.RSSKiB) / 1024
	}
	for i := 0; i < cfg.Warmup+cfg.Reps; i++ {
		var first [2]Response
		for k, w := range sides { // A B A B …: the sides never run at once
			time.Sleep(cfg.Settle)
			r, err := w.Call(Request{Op: phase, Name: name, Values: i == 0 && phase == PhaseLogprobs})
			if err != nil {
				return res, err
			}
			first[k] = r
			if i >= cfg.Warmup {
				results[k].Seconds = append(results[k].Seconds, r.Seconds)
			}
			results[k].PeakRSSMiB = max(results[k].PeakRSSMiB, float64(r.PeakRSSKiB)/1024)
		}
		if i == 0 {
			if res.Check, err = check(phase, batch, first[0], first[1]); err != nil {
				return res, err
			}
		}
		cfg.logf("benchcmp: %s %s %s step %d: dartc %.3f s, pytorch %.3f s\n", cfg.Label, phase, name, i, first[0].Seconds, first[1].Seconds)
	}
	for _, s := range results {
		d := stats.Describe(s.Seconds)
		s.Min, s.Median = d.Min, d.Median
	}
	res.RatioMedian = res.Dartc.Median / res.Torch.Median
	res.RatioMin = res.Dartc.Min / res.Torch.Min
	res.PeakRatio = res.Dartc.PeakRSSMiB / res.Torch.PeakRSSMiB
	res.LoadAfter = loadavg()
	return res, nil
}

// check compares the sides' first step: they must compute the same model
// on the same batch, or the timings compare different work.
func check(phase string, b *Batch, d, t Response) (string, error) {
	if phase == PhaseTrain {
		if d.Loss == nil || t.Loss == nil {
			return "", errors.New("benchcmp: check: a train answer has no loss")
		}
		diff := math.Abs(*d.Loss - *t.Loss)
		tol := 1e-4*b.WeightedPositions() + 1e-3*math.Abs(*t.Loss)
		msg := fmt.Sprintf("loss %.6g vs %.6g (|Δ| %.2g, tolerance %.2g)", *d.Loss, *t.Loss, diff, tol)
		if !(diff <= tol) {
			return msg, fmt.Errorf("benchcmp: check: the two sides' losses differ: %s; they do not run the same model or batch", msg)
		}
		return msg, nil
	}
	n := b.Rows * b.Seq
	if len(d.Logprobs) != n || len(t.Logprobs) != n {
		return "", fmt.Errorf("benchcmp: check: log-probs: dartc gave %d values, PyTorch %d, want %d", len(d.Logprobs), len(t.Logprobs), n)
	}
	worst := 0.0
	for i := range n {
		if i%b.Seq == b.Seq-1 { // no next token
			continue
		}
		worst = max(worst, math.Abs(d.Logprobs[i]-t.Logprobs[i]))
	}
	const tol = 1e-3
	msg := fmt.Sprintf("log-probs max |Δ| %.2g (tolerance %g)", worst, tol)
	if !(worst <= tol) {
		return msg, fmt.Errorf("benchcmp: check: the two sides' log-probs differ: %s; they do not run the same model or batch", msg)
	}
	return msg, nil
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}
