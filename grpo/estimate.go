package grpo

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/trajectory"
)

// Coefficients of the memory estimate (EstimateStep), fitted to the peak
// RSS of `go test -run '^$' -bench EstimateMemory ./grpo` (tiny preset with
// Qwen2's 151,936-token vocabulary, where the vocabulary tensors dominate):
// train.onnx and logprobs.onnx together hold about this many
// [micro_batch, seq, vocab] tensors at their high-water marks (ORT's arena
// keeps them), or, with low_memory, at once.
const (
	vocabTensors          = 9.0
	vocabTensorsLowMemory = 5.0
	// With the chunked heads (manifest head_chunk > 0) the vocabulary
	// tensors are [chunk, vocab] whatever the batch and length: about this
	// many of them, over both sessions.
	chunkTensors = 13.0
	// The rollout decodes all of a step's rollouts together: per rollout
	// row, its last-position logits and the sampling's vocabulary-sized
	// buffers (an allowance, not fitted: it matters only at Search-R1's
	// hundreds of rollouts a step).
	decodeVocabTensors = 6.0
	// Saved activations per token and layer, in units of hidden and
	// intermediate widths; attention keeps scores and probabilities.
	actHidden, actInter, actScores = 14.0, 6.0, 3.0
	// Weight copies: decode, logprobs and train sessions each hold the
	// backbone.
	weightCopies = 3.0
)

// Estimate is the predicted cost of one GRPO step of a configuration.
type Estimate struct {
	// SeqLen is the longest rollout: the prompt, MaxTurns+1 turns of
	// MaxTurnTokens and MaxTurns observations of MaxObsTokens (plus tags).
	SeqLen, PromptTokens int
	// Bytes of the peak memory by part, and their sum.
	WeightBytes, VocabBytes, ActivationBytes, CacheBytes, PeakBytes float64
	// FLOPs by phase (forward ≈ 2·params·tokens, backward twice that).
	RolloutFLOPs, ReferenceFLOPs, TrainFLOPs float64
	// GenTokens bounds the tokens a rollout samples: MaxTurns+1 turns of
	// MaxTurnTokens; Rollouts is prompts × group.
	GenTokens, Rollouts int
	// MicroBatch is the rollouts per train.onnx call the estimate assumed.
	MicroBatch int
	// Seconds by phase (set by WithRates), 0 without rates.
	RolloutSeconds, ReferenceSeconds, TrainSeconds float64
	// Rate is the measured forward FLOP/s (Trainer.Calibrate);
	// DecodeStepSeconds the measured time of one decode step (graph and
	// sampling) of DecodeBatch rows.
	Rate, DecodeStepSeconds float64
	DecodeBatch             int
	twoAgent                bool
}

// StepSeconds is the estimated time of a step.
func (e Estimate) StepSeconds() float64 {
	return e.RolloutSeconds + e.ReferenceSeconds + e.TrainSeconds
}

// WithRates fills the seconds from a measured forward FLOP rate (reference
// and train phases) and a measured decode step of batch rows (the rollout:
// GenTokens steps over all of a step's rollouts, scaled linearly from
// batch rows, twice for two-agent; an upper bound when rollouts answer
// early). stepSeconds 0 times the rollout by FLOPs too.
func (e Estimate) WithRates(rate, stepSeconds float64, batch int) Estimate {
	e.Rate, e.DecodeStepSeconds, e.DecodeBatch = rate, stepSeconds, batch
	if rate > 0 {
		e.RolloutSeconds, e.ReferenceSeconds, e.TrainSeconds = e.RolloutFLOPs/rate, e.ReferenceFLOPs/rate, e.TrainFLOPs/rate
	}
	if stepSeconds > 0 && batch > 0 {
		e.RolloutSeconds = float64(e.GenTokens) * stepSeconds * max(1, float64(e.Rollouts)/float64(batch))
		if e.twoAgent {
			e.RolloutSeconds *= 2
		}
	}
	return e
}

// String is a one-line summary: memory by part and time by phase.
func (e Estimate) String() string {
	gib := func(b float64) string { return fmt.Sprintf("%.1f GiB", b/(1<<30)) }
	s := fmt.Sprintf("rollouts up to %d tokens (prompt %d): peak memory ≈ %s (vocabulary tensors %s, activations %s, weights %s, KV cache %s)",
		e.SeqLen, e.PromptTokens, gib(e.PeakBytes), gib(e.VocabBytes), gib(e.ActivationBytes), gib(e.WeightBytes), gib(e.CacheBytes))
	if e.Rate > 0 {
		s += fmt.Sprintf("; time ≈ %s a step at most (rollout %s for %d rollouts × %d sampled tokens, reference %s, train %s; measured here: %.2g FLOP/s forward, %.0f ms a decode step of %d rows; search not counted)",
			dur(e.StepSeconds()), dur(e.RolloutSeconds), e.Rollouts, e.GenTokens, dur(e.ReferenceSeconds), dur(e.TrainSeconds), e.Rate, 1e3*e.DecodeStepSeconds, e.DecodeBatch)
	}
	return s
}

func dur(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Millisecond * 100).String()
}

// obsTags is the allowance for the tags around an observation and a turn.
const obsTags = 16

// modelShape is what the estimate needs of the model, from the manifest.
type modelShape struct {
	layers                     int
	vocab, hidden, inter, qDim float64
	linearParams               float64 // Σ in·out over every target linear
	dtBytes                    float64
	kvDim                      float64
}

func shapeOf(man *manifest.Manifest) modelShape {
	m := man.Model
	s := modelShape{layers: m.Layers, vocab: float64(m.Vocab), hidden: float64(m.Hidden), dtBytes: 4,
		kvDim: float64(m.KVHeads * m.HeadDim)}
	if m.DType == "float64" {
		s.dtBytes = 8
	} else if m.DType == "float16" {
		s.dtBytes = 2
	}
	for _, t := range man.LoRA.Targets {
		s.linearParams += float64(t.In * t.Out)
		switch t.Kind {
		case "gate", "up":
			s.inter = max(s.inter, float64(t.Out))
		case "q":
			s.qDim = max(s.qDim, float64(t.Out))
		}
	}
	if s.inter == 0 {
		s.inter = 4 * s.hidden
	}
	if s.qDim == 0 {
		s.qDim = s.hidden
	}
	return s
}

// forwardFLOPs is a forward pass over n tokens that each attend to ctx
// earlier positions on average: 2 FLOPs per weight (the target linears
// and the lm_head) plus the attention products.
func (s modelShape) forwardFLOPs(n, ctx float64) float64 {
	return n * (2*s.linearParams + 2*s.vocab*s.hidden + 4*float64(s.layers)*s.qDim*ctx)
}

// EstimateStep predicts the peak memory and the compute of one step of cfg
// on the compiled model man (in dir) for prompts of promptTokens tokens.
// Memory: the vocabulary-sized tensors of train.onnx and logprobs.onnx
// (vocabTensors × micro_batch × seq × vocab × dtype), the activations the
// backward keeps (per token and layer, actHidden·hidden + actInter·
// intermediate values, and actScores attention rows of seq), three copies
// of the weights (one per session) and the rollout's KV cache. Compute:
// forward ≈ 2 FLOPs per weight per token plus attention; the rollout runs
// one forward per token, the reference one per rollout token, training a
// forward and a backward (3×) per pass.
func EstimateStep(man *manifest.Manifest, dir string, cfg Config, promptTokens int) Estimate {
	seq := promptTokens + (cfg.MaxTurns+1)*(cfg.MaxTurnTokens+obsTags) + cfg.MaxTurns*(cfg.MaxObsTokens+obsTags)
	if man.Model.MaxLength > 0 {
		seq = min(seq, int(man.Model.MaxLength))
	}
	return estimateFor(man, dir, cfg, promptTokens, seq)
}

// estimateFor is EstimateStep for rollouts of seq tokens.
func estimateFor(man *manifest.Manifest, dir string, cfg Config, promptTokens, seq int) Estimate {
	s := shapeOf(man)
	e := Estimate{PromptTokens: promptTokens, SeqLen: seq, GenTokens: (cfg.MaxTurns + 1) * cfg.MaxTurnTokens, Rollouts: cfg.RolloutsPerStep(),
		twoAgent: cfg.Variant == VariantTwoAgent}
	e.MicroBatch = min(cfg.MicroBatch, cfg.RolloutsPerStep())
	S, b := float64(e.SeqLen), float64(e.MicroBatch)
	rows := float64(cfg.RolloutsPerStep())
	L := float64(s.layers)
	k := vocabTensors
	if cfg.LowMemory {
		k = vocabTensorsLowMemory
	}
	e.VocabBytes = k * b * S * s.vocab * s.dtBytes
	if c := float64(man.HeadChunk); c > 0 {
		e.VocabBytes = chunkTensors*min(c, b*S)*s.vocab*s.dtBytes + decodeVocabTensors*rows*s.vocab*s.dtBytes
	}
	heads := s.qDim / math.Max(1, float64(man.Model.HeadDim))
	e.ActivationBytes = b*S*L*(actHidden*s.hidden+actInter*s.inter)*s.dtBytes + b*L*heads*S*S*actScores*s.dtBytes
	e.WeightBytes = weightCopies * weightBytes(man, dir)
	e.CacheBytes = rows * L * 2 * s.kvDim * S * s.dtBytes
	e.PeakBytes = e.VocabBytes + e.ActivationBytes + e.WeightBytes + e.CacheBytes

	e.RolloutFLOPs = rows * s.forwardFLOPs(S, S/2)
	passes := 1.0
	if cfg.Variant == VariantTwoAgent || cfg.Isolation == IsolationStrict {
		passes = float64(len(man.LoRA.Roles))
	}
	if cfg.Variant == VariantTwoAgent {
		e.RolloutFLOPs *= passes
	}
	lp := 0.0
	if cfg.KLCoef > 0 {
		lp++
	}
	if cfg.RecomputeOldLP || cfg.Variant == VariantTwoAgent {
		lp += passes
	}
	e.ReferenceFLOPs = lp * rows * s.forwardFLOPs(S, S/2)
	e.TrainFLOPs = 3 * passes * rows * s.forwardFLOPs(S, S/2)
	return e
}

// weightBytes is the size of the model's weights: the source graph and
// its external data files.
func weightBytes(man *manifest.Manifest, dir string) float64 {
	n := float64(man.Source.Bytes)
	for _, f := range man.Source.ExternalData {
		if fi, err := os.Stat(filepath.Join(dir, f)); err == nil {
			n += float64(fi.Size())
		}
	}
	return n
}

// Calibrate measures the forward FLOP rate of logprobs.onnx on this
// machine over a single sequence of n tokens with the adapters off: three
// runs, the fastest of the last two (the first ones warm the session up).
func (tr *Trainer) Calibrate(n int) (float64, error) {
	tj := &trajectory.Trajectory{Tokens: make([]int64, n), Roles: make([]int64, n)}
	for i := range tj.Tokens {
		tj.Tokens[i] = int64(i % int(max(1, tr.man.Model.Vocab)))
	}
	best := time.Duration(math.MaxInt64)
	for k := range 3 {
		t0 := time.Now()
		if _, err := tr.forwardLogprobs([]*trajectory.Trajectory{tj}, true, nil); err != nil {
			return 0, fmt.Errorf("grpo: calibrate: %w", err)
		}
		if k > 0 {
			best = min(best, time.Since(t0))
		}
	}
	return shapeOf(tr.man).forwardFLOPs(float64(n), float64(n)/2) / best.Seconds(), nil
}

// CalibrationTokens is the length of Calibrate's sequence for the model:
// about 2·10¹⁰ FLOPs (a second or less on a CPU core pair), 16 to 256 tokens.
func CalibrationTokens(man *manifest.Manifest) int {
	per := shapeOf(man).forwardFLOPs(1, 0)
	return int(math.Max(16, math.Min(256, 2e10/per)))
}

// Manifest returns the compiled model's manifest.
func (tr *Trainer) Manifest() *manifest.Manifest { return tr.man }

// MemoryLimit is the memory a run may use now: the smallest of the
// machine's total and available memory (/proc/meminfo MemTotal and
// MemAvailable, which counts reclaimable caches as free) and the cgroup
// limit, if any; 0 when none can be read.
func MemoryLimit() float64 {
	limit := 0.0
	lower := func(v float64) {
		if v > 0 && (limit == 0 || v < limit) {
			limit = v
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			for _, key := range []string{"MemTotal:", "MemAvailable:"} {
				if rest, ok := strings.CutPrefix(line, key); ok {
					kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
					lower(kb * 1024)
				}
			}
		}
	}
	for _, p := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if b, err := os.ReadFile(p); err == nil {
			if v, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64); err == nil {
				lower(v)
			}
		}
	}
	return limit
}
