package grpo

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"github.com/dartc/dartc/internal/atomicfile"
	"github.com/dartc/dartc/internal/jsonerr"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/trajectory"
)

// MetricsFile is the JSONL file of per-step metrics inside a run directory.
const MetricsFile = "metrics.jsonl"

// Metrics is one row of metrics.jsonl. Token statistics (KL, clip
// fraction, ratio, entropy) are means over the positions that carried
// loss; the *_s fields are wall times of the step's phases.
type Metrics struct {
	Step       int     `json:"step"`
	RewardMean float64 `json:"reward_mean"`
	RewardStd  float64 `json:"reward_std"`
	EM         float64 `json:"em"`
	// ResponseLength is the mean count of tokens after the prompt
	// (observations included); PolicyTokens the mean sampled ones.
	ResponseLength float64 `json:"response_length"`
	PolicyTokens   float64 `json:"policy_tokens"`
	Searches       float64 `json:"searches"`
	// Loss is the mean over the step's mini-batches of their loss.
	Loss float64 `json:"loss"`
	// KL is the mean k3 estimate of KL(policy ‖ base); nil (absent from
	// metrics.jsonl) when kl_coef is 0, where no reference log-probs are
	// computed to measure it against.
	KL        *float64 `json:"kl,omitempty"`
	ClipFrac  float64  `json:"clip_frac"`
	RatioMean float64  `json:"ratio_mean"`
	// RatioMaxDev is max |ratio − 1| over the loss positions of the step's
	// first mini-batch, whose adapters are the sampling ones.
	RatioMaxDev float64 `json:"ratio_max_dev_first"`
	Entropy     float64 `json:"entropy"`
	GradNorm    float64 `json:"grad_norm"`
	// LossScale is a float16 train graph's loss scale after the step.
	LossScale float64 `json:"loss_scale,omitempty"`
	LR        float64 `json:"lr"`
	// TokensPerSecond counts sampled tokens per rollout second;
	// TrainTokensPerSecond loss tokens per train.onnx second.
	TokensPerSecond      float64 `json:"tokens_per_s"`
	TrainTokensPerSecond float64 `json:"train_tokens_per_s"`
	RolloutSeconds       float64 `json:"rollout_s"`
	ReferenceSeconds     float64 `json:"reference_s"`
	TrainSeconds         float64 `json:"train_s"`
	OptimizerSeconds     float64 `json:"optimizer_s"`
	StepSeconds          float64 `json:"step_s"`
	// TrainPositions counts the padded positions (batch × longest
	// sequence) that the step's train.onnx calls processed, over
	// TrainCalls calls: the work behind TrainSeconds, for MFU.
	TrainPositions int `json:"train_positions"`
	TrainCalls     int `json:"train_calls"`
	// NonFinite is set when an update of this step was skipped; Skipped
	// counts the run's skipped updates so far.
	NonFinite bool `json:"nonfinite,omitempty"`
	Skipped   int  `json:"skipped"`
	// NaNFields names the fields that were NaN or ±Inf (JSON has no such
	// numbers): they are written as 0.
	NaNFields []string `json:"nan_fields,omitempty"`

	generated, trained int
}

func (m *Metrics) addRollouts(trajs []*trajectory.Trajectory, rewards []float64) {
	n := float64(len(trajs))
	for i, t := range trajs {
		m.RewardMean += rewards[i] / n
		m.EM += EMReward(t) / n
		m.ResponseLength += float64(t.ResponseTokens()) / n
		m.PolicyTokens += float64(t.PolicyTokens()) / n
		m.Searches += float64(len(t.Searches)) / n
		m.generated += t.PolicyTokens()
	}
	if len(rewards) > 1 {
		ss := 0.0
		for _, r := range rewards {
			ss += (r - m.RewardMean) * (r - m.RewardMean)
		}
		m.RewardStd = math.Sqrt(ss / (n - 1))
	}
}

// tokenStats accumulates train.onnx's per-token outputs over loss positions.
type tokenStats struct {
	n, kl, clipped, ratio, entropy float64
	maxDev                         float64
	calls                          int
	firstDone                      bool
}

func (s *tokenStats) add(out map[string]*runtime.Tensor, w [][]float64, batch []*trajectory.Trajectory) {
	kl, cl, ra, en := out["kl"].Floats(), out["clipped"].Floats(), out["ratio"].Floats(), out["entropy"].Floats()
	S := int(out["ratio"].Shape()[1])
	for i := range batch {
		for t, v := range w[i] {
			if v == 0 {
				continue
			}
			k := i*S + t
			s.n++
			s.kl += kl[k]
			s.clipped += cl[k]
			s.ratio += ra[k]
			s.entropy += en[k]
			if !s.firstDone {
				s.maxDev = math.Max(s.maxDev, math.Abs(ra[k]-1))
			}
		}
	}
}

// into sets m's token statistics; the KL only when it was measured
// (withKL: the graph was fed reference log-probs).
func (s *tokenStats) into(m *Metrics, withKL bool) {
	m.RatioMaxDev = s.maxDev
	if s.n == 0 {
		return
	}
	if withKL {
		kl := s.kl / s.n
		m.KL = &kl
	}
	m.ClipFrac, m.RatioMean, m.Entropy = s.clipped/s.n, s.ratio/s.n, s.entropy/s.n
}

// finiteRow zeroes the non-finite float fields of m, naming them.
func finiteRow(m Metrics) Metrics {
	v := reflect.ValueOf(&m).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.Pointer && !f.IsNil() && f.Elem().Kind() == reflect.Float64 {
			x := f.Elem().Float()
			f.Set(reflect.ValueOf(&x)) // a copy: the caller's value stays
			f = f.Elem()
		}
		if f.Kind() != reflect.Float64 || !f.CanSet() {
			continue
		}
		if x := f.Float(); math.IsNaN(x) || math.IsInf(x, 0) {
			name, _, _ := strings.Cut(v.Type().Field(i).Tag.Get("json"), ",")
			m.NaNFields = append(m.NaNFields, name)
			f.SetFloat(0)
		}
	}
	return m
}

// appendMetrics appends one row and syncs it.
func appendMetrics(path string, m Metrics) error {
	m = finiteRow(m)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("grpo: metrics: %w", err)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("grpo: metrics: %w", err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("grpo: metrics: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("grpo: metrics: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("grpo: metrics: %w", err)
	}
	return f.Close()
}

// ReadMetrics reads a metrics.jsonl file. A torn last line (a crash in the
// middle of a write) is ignored, and so is a leading UTF-8 byte order mark
// (an editor's save).
func ReadMetrics(path string) ([]Metrics, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("grpo: metrics: %w", err)
	}
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	var rows []Metrics
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<16), 1<<24)
	line := 0
	for sc.Scan() {
		line++
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var m Metrics
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			if !bytes.HasSuffix(b, []byte("\n")) && line == bytes.Count(b, []byte("\n"))+1 {
				break
			}
			return nil, fmt.Errorf("grpo: metrics %s line %d: %w", path, line, jsonerr.Describe(err))
		}
		rows = append(rows, m)
	}
	return rows, sc.Err()
}

// truncateMetrics drops the rows after step (steps a resumed run replays),
// rewriting the file atomically.
func truncateMetrics(path string, step int) error {
	rows, err := ReadMetrics(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	for _, m := range rows {
		if m.Step > step {
			break
		}
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		buf.Write(append(b, '\n'))
	}
	return atomicfile.WriteFile(path, buf.Bytes())
}
