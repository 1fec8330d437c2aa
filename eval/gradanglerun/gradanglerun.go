package gradanglerun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/dartc/dartc/internal/atomicfile"
	"github.com/dartc/dartc/internal/jsonerr"

	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/eval"
	"github.com/dartc/dartc/eval/gradangle"
	"github.com/dartc/dartc/eval/run"
	"github.com/dartc/dartc/peft"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/runtime/agent"
	"github.com/dartc/dartc/safetensors"
	"github.com/dartc/dartc/trajectory"
	"github.com/schollz/progressbar/v3"
)

// File names in the output directory.
const (
	SamplesFile   = "samples.jsonl"
	AnglesFile    = "angles.json"
	SummaryFile   = "summary.json"
	HistogramFile = "angles.png"
)

// Token kinds: the router's role ids.
const (
	KindReason = 0
	KindTool   = 1
)

// Command is the name `dartc gradangle` records in settings.json.
const Command = "gradangle"

// DefaultBatch is the number of questions rolled out together.
const DefaultBatch = 4

// Options configure Run.
type Options struct {
	// Agent configures the rollouts; Agent.Adapters is the shared adapter
	// file (its reason slot is used), and Agent.Model must hold train.onnx.
	Agent    agent.Config
	Datasets []string
	Limit    int    // questions per dataset, 0: all
	Group    int    // rollouts per question [1]
	Batch    int    // questions per agent run [DefaultBatch]
	Seed     uint64 // sampling seed
	Dir      string // output directory: new, empty or gradangle's own (CheckOutput)
	Progress io.Writer
	// Search names the search backend as given (recorded in the settings).
	Search string
}

// PartialDir holds, inside the output directory, the gradients of the
// batches finished so far (one safetensors file per batch) and their rows
// (samples.jsonl); they are removed once the report is written, and the
// folder too if nothing else is in it.
const PartialDir = "partial"

// batchFile matches the names of the per-batch gradient files in
// PartialDir, and of their temporary files (atomicfile) left by a crash.
var batchFile = regexp.MustCompile(`^\.?batch-\d{6}\.safetensors(\.tmp-\d+)?$`)

// SampleInfo is one line of samples.jsonl.
type SampleInfo struct {
	ID           string  `json:"id"`
	Sample       int     `json:"sample"`
	ReasonTokens int     `json:"reason_tokens"`
	ToolTokens   int     `json:"tool_tokens"`
	ReasonNorm   float64 `json:"reason_grad_norm"`
	ToolNorm     float64 `json:"tool_grad_norm"`
	MaxRatioDev  float64 `json:"max_abs_ratio_minus_1"`
	Stop         string  `json:"stop"`
	// Batch is the index of the batch's first question; Run the
	// SettingsID of the run's settings.
	Batch int    `json:"batch"`
	Run   string `json:"run,omitempty"`
}

// Report is what Run returns.
type Report struct {
	Samples []gradangle.Sample
	Info    []SampleInfo
	Angles  gradangle.Angles
	Summary gradangle.Summary
	// Resumed counts the samples taken from an interrupted run.
	Resumed int
	Elapsed time.Duration
}

// Grads computes per-kind gradients of trajectories with train.onnx.
type Grads struct {
	sess     *runtime.Session
	man      *manifest.Manifest
	adapters map[string]*runtime.Tensor
	shared   []string // the reason-slot adapter inputs, whose gradients are measured
	dt       runtime.DType
}

// NewGrads opens train.onnx of the compiled directory. adapters feeds
// every adapter input.
func NewGrads(dir string, adapters map[string]*runtime.Tensor, opts *runtime.Options) (*Grads, error) {
	man, err := manifest.Read(dir)
	if err != nil {
		return nil, fmt.Errorf("gradanglerun: %w", err)
	}
	spec := man.Graphs[manifest.GraphTrain]
	if spec == nil {
		return nil, fmt.Errorf("gradanglerun: %s has no train.onnx: compile with the train graph (dartc compile --graphs decode,logprobs,train)", dir)
	}
	if len(man.LoRA.Roles) < 2 {
		return nil, fmt.Errorf("gradanglerun: the model has roles %v, need reason and tool", man.LoRA.Roles)
	}
	g := &Grads{man: man, adapters: adapters}
	reason := man.LoRA.Roles[KindReason]
	var outputs []string
	for _, tg := range man.LoRA.Targets {
		g.shared = append(g.shared, tg.A[reason], tg.B[reason])
		outputs = append(outputs, "grad."+tg.A[reason], "grad."+tg.B[reason])
	}
	o := runtime.Options{}
	if opts != nil {
		o = *opts
	}
	o.Config = spec.SessionConfig
	o.Outputs = append(outputs, "ratio")
	if g.sess, err = runtime.NewSession(filepath.Join(dir, spec.File), &o); err != nil {
		return nil, fmt.Errorf("gradanglerun: %w", err)
	}
	in, ok := g.sess.Input("token_weights")
	if !ok {
		g.sess.Destroy()
		return nil, fmt.Errorf("gradanglerun: train.onnx has no token_weights input")
	}
	g.dt = in.DType
	return g, nil
}

// Close releases the session.
func (g *Grads) Close() error { return g.sess.Destroy() }

func floatTensor(dt runtime.DType, shape []int64, v []float64) *runtime.Tensor {
	t := runtime.NewTensor(dt, shape...)
	if dt == runtime.Float64 {
		copy(t.Float64(), v)
		return t
	}
	f := t.Float32()
	for i, x := range v {
		f[i] = float32(x)
	}
	return t
}

// Gradient returns the flattened gradient of the shared adapter from the
// policy tokens of tr whose role is kind (nil when it has none), the
// number of those tokens and max |ratio − 1| over them.
func (g *Grads) Gradient(tr *trajectory.Trajectory, kind int64) (grad []float32, tokens int, ratioDev float64, err error) {
	S := int64(len(tr.Tokens))
	w := make([]float64, S)
	for t := range tr.Tokens {
		if tr.Policy[t] && tr.Roles[t] == kind {
			w[t] = 1
			tokens++
		}
	}
	if tokens == 0 {
		return nil, 0, 0, nil
	}
	ones, pos, zeros := make([]int64, S), make([]int64, S), make([]int64, S)
	adv := make([]float64, S)
	for t := range S {
		ones[t], pos[t], adv[t] = 1, t, 1
	}
	in := map[string]*runtime.Tensor{}
	for k, v := range g.adapters {
		in[k] = v
	}
	shape := []int64{1, S}
	for name, v := range map[string][]int64{"input_ids": tr.Tokens, "attention_mask": ones, "position_ids": pos, g.man.LoRA.RoleInput: zeros} {
		if in[name], err = runtime.FromInt64(shape, v); err != nil {
			return nil, 0, 0, fmt.Errorf("gradanglerun: %w", err)
		}
	}
	in["token_weights"] = floatTensor(g.dt, shape, w)
	in["advantages"] = floatTensor(g.dt, shape, adv)
	in["old_logprobs"] = floatTensor(g.dt, shape, tr.LogProbs)
	in["ref_logprobs"] = floatTensor(g.dt, shape, tr.LogProbs)
	in["clip_low"] = floatTensor(g.dt, nil, []float64{0.2})
	in["clip_high"] = floatTensor(g.dt, nil, []float64{0.2})
	in["kl_coef"] = floatTensor(g.dt, nil, []float64{0})
	in["entropy_coeff"] = floatTensor(g.dt, nil, []float64{0})
	if g.man.Graphs[manifest.GraphTrain].Input("loss_scale") != nil { // float16 graphs
		in["loss_scale"] = floatTensor(g.dt, nil, []float64{1})
	}
	out, err := g.sess.Run(in)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("gradanglerun: train.onnx on %q: %w", tr.ID, err)
	}
	grads := map[string][]float32{}
	for _, name := range g.shared {
		grads[name] = out["grad."+name].Float32sAt(nil, 0, out["grad."+name].Len())
	}
	ratio := out["ratio"].Floats()
	for t, x := range w {
		if x != 0 {
			ratioDev = math.Max(ratioDev, math.Abs(ratio[t]-1))
		}
	}
	return gradangle.Flatten(grads), tokens, ratioDev, nil
}

// sharedAdapterFile writes a copy of path with its reason-slot tensors in
// every slot and returns the copy's name.
func sharedAdapterFile(path, dir string) (string, error) {
	f, err := safetensors.Read(path)
	if err != nil {
		return "", fmt.Errorf("gradanglerun: %w", err)
	}
	reason := map[string]safetensors.Tensor{}
	for _, t := range f.Tensors {
		if n, ok := peft.ParseAdapterName(t.Name); ok && n.Role == "reason" {
			reason[n.Module+"."+n.Matrix] = t
		}
	}
	out := make([]safetensors.Tensor, 0, len(f.Tensors))
	for _, t := range f.Tensors {
		n, ok := peft.ParseAdapterName(t.Name)
		if !ok {
			return "", fmt.Errorf("gradanglerun: %s: tensor %q is not an adapter tensor", path, t.Name)
		}
		src, ok := reason[n.Module+"."+n.Matrix]
		if !ok {
			return "", fmt.Errorf("gradanglerun: %s has no reason-slot tensor for %s", path, t.Name)
		}
		src.Name = t.Name
		out = append(out, src)
	}
	dst := filepath.Join(dir, "shared-adapter.safetensors")
	if err := safetensors.Write(dst, out, f.Metadata); err != nil {
		return "", fmt.Errorf("gradanglerun: %w", err)
	}
	return dst, nil
}

func norm(v []float32) float64 {
	s := 0.0
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

// Run rolls out, measures the gradients and writes the report.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Dir == "" {
		return nil, errors.New("gradanglerun: no output directory")
	}
	if opts.Agent.Adapters == "" {
		return nil, errors.New("gradanglerun: no adapter file: the angles are those of a trained shared adapter (--adapters)")
	}
	if opts.Group <= 0 {
		opts.Group = 1
	}
	if opts.Batch <= 0 {
		opts.Batch = DefaultBatch
	}
	var exs []eval.Example
	for _, p := range opts.Datasets {
		e, err := eval.Load(p)
		if err != nil {
			return nil, fmt.Errorf("gradanglerun: %w", err)
		}
		if opts.Limit > 0 && len(e) > opts.Limit {
			e = e[:opts.Limit]
		}
		exs = append(exs, e...)
	}
	if len(exs) == 0 {
		return nil, errors.New("gradanglerun: no questions (give --data)")
	}
	if err := CheckOutput(opts.Dir); err != nil {
		return nil, fmt.Errorf("gradanglerun: %w", err)
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("gradanglerun: %w", err)
	}
	tmp, err := os.MkdirTemp("", "dartc-gradangle-")
	if err != nil {
		return nil, fmt.Errorf("gradanglerun: %w", err)
	}
	defer os.RemoveAll(tmp)
	cfg := opts.Agent
	if cfg.Adapters, err = sharedAdapterFile(opts.Agent.Adapters, tmp); err != nil {
		return nil, err
	}
	a, err := agent.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("gradanglerun: %w", err)
	}
	defer a.Close()
	g, err := NewGrads(cfg.Model, a.Adapters(), cfg.Session)
	if err != nil {
		return nil, err
	}
	defer g.Close()
	set, err := run.AgentSettings(opts.Agent, opts.Search)
	if err != nil {
		return nil, fmt.Errorf("gradanglerun: %w", err)
	}
	set["datasets"], set["limit"] = fmt.Sprint(opts.Datasets), strconv.Itoa(opts.Limit)
	set["group"], set["batch"], set["seed"] = strconv.Itoa(opts.Group), strconv.Itoa(opts.Batch), strconv.FormatUint(opts.Seed, 10)
	partial := filepath.Join(opts.Dir, PartialDir)
	samplesPath := filepath.Join(partial, SamplesFile)
	prev, err := readInfos(samplesPath)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(prev))
	for i, p := range prev {
		ids[i] = p.Run
	}
	runID, err := run.CheckSettings(opts.Dir, Command, set, len(prev), ids, partial)
	if err != nil {
		return nil, fmt.Errorf("gradanglerun: %w", err)
	}
	byBatch := map[int][]SampleInfo{}
	for _, p := range prev {
		byBatch[p.Batch] = append(byBatch[p.Batch], p)
	}
	if err := os.MkdirAll(partial, 0o755); err != nil {
		return nil, fmt.Errorf("gradanglerun: %w", err)
	}
	var bar *progressbar.ProgressBar
	if opts.Progress != nil {
		bar = progressbar.NewOptions(len(exs)*opts.Group, progressbar.OptionSetWriter(opts.Progress),
			progressbar.OptionSetDescription("gradangle"), progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionOnCompletion(func() { fmt.Fprintln(opts.Progress) }))
	}
	rep := &Report{}
	start := time.Now()
	for b := 0; b < len(exs); b += opts.Batch {
		batch := exs[b:min(b+opts.Batch, len(exs))]
		gradsPath := filepath.Join(partial, fmt.Sprintf("batch-%06d.safetensors", b))
		if infos := byBatch[b]; len(infos) == len(batch)*opts.Group {
			samples, err := readBatch(gradsPath, infos)
			if err == nil {
				rep.Samples = append(rep.Samples, samples...)
				rep.Info = append(rep.Info, infos...)
				rep.Resumed += len(infos)
				if bar != nil {
					bar.Add(len(infos))
				}
				continue
			}
		}
		qs := make([]agent.Question, len(batch))
		for i, ex := range batch {
			qs[i] = agent.Question{ID: ex.Source + "/" + ex.ID, Question: ex.Question, Golden: ex.Golden}
		}
		trs, err := a.Run(ctx, qs, opts.Group, opts.Seed+uint64(b))
		if err != nil {
			return nil, fmt.Errorf("gradanglerun: questions %d–%d: %w (rerun the same command to resume: finished batches are kept in %s)", b+1, b+len(batch), err, partial)
		}
		var tensors []safetensors.Tensor
		var infos []SampleInfo
		for r, tr := range trs {
			info := SampleInfo{ID: tr.ID, Sample: r % opts.Group, Stop: tr.Stop, Batch: b, Run: runID}
			s := gradangle.Sample{ID: fmt.Sprintf("%s#%d", tr.ID, info.Sample)}
			var dev float64
			if s.Reason, info.ReasonTokens, dev, err = g.Gradient(tr, KindReason); err != nil {
				return nil, err
			}
			info.MaxRatioDev = dev
			if s.Tool, info.ToolTokens, dev, err = g.Gradient(tr, KindTool); err != nil {
				return nil, err
			}
			info.MaxRatioDev = math.Max(info.MaxRatioDev, dev)
			info.ReasonNorm, info.ToolNorm = norm(s.Reason), norm(s.Tool)
			rep.Samples = append(rep.Samples, s)
			rep.Info = append(rep.Info, info)
			infos = append(infos, info)
			tensors = append(tensors, vector(fmt.Sprintf("%d.reason", r), s.Reason), vector(fmt.Sprintf("%d.tool", r), s.Tool))
			if bar != nil {
				bar.Add(1)
			}
		}
		// The gradients first, then the rows that mark the batch done.
		if err := safetensors.Write(gradsPath, tensors, nil); err != nil {
			return nil, fmt.Errorf("gradanglerun: %w", err)
		}
		if err := appendInfos(samplesPath, infos); err != nil {
			return nil, err
		}
	}
	rep.Elapsed = time.Since(start)
	if rep.Angles, err = gradangle.Compute(rep.Samples); err != nil {
		return nil, fmt.Errorf("gradanglerun: %w", err)
	}
	rep.Summary = rep.Angles.Summarize()
	if err := write(opts.Dir, rep); err != nil {
		return nil, err
	}
	if err := removePartial(partial); err != nil {
		return nil, err
	}
	return rep, nil
}

// CheckOutput checks that `dartc gradangle` may write its report into dir
// (run.CheckDir): new, empty, or one it wrote.
func CheckOutput(dir string) error {
	return run.CheckDir(dir, Command, func(s map[string]string, names []string) bool {
		// Written before settings.json named its command: a group setting,
		// and the partial rows or the finished ones — or settings.json
		// alone, when that run stopped before its first row.
		_, group := s["group"]
		return group && (slices.Contains(names, PartialDir) || slices.Contains(names, SamplesFile) || len(names) == 1)
	})
}

// removePartial deletes the files Run writes in PartialDir, then the
// folder if that left it empty: anything else in it is not Run's.
func removePartial(partial string) error {
	entries, err := os.ReadDir(partial)
	if err != nil {
		return fmt.Errorf("gradanglerun: %w", err)
	}
	left := 0
	for _, e := range entries {
		if !e.Type().IsRegular() || e.Name() != SamplesFile && !batchFile.MatchString(e.Name()) {
			left++
			continue
		}
		if err := os.Remove(filepath.Join(partial, e.Name())); err != nil {
			return fmt.Errorf("gradanglerun: %w", err)
		}
	}
	if left > 0 {
		return nil
	}
	if err := os.Remove(partial); err != nil {
		return fmt.Errorf("gradanglerun: %w", err)
	}
	return nil
}

// vector is a gradient as a 1-D float32 tensor (an empty one as shape [0]).
func vector(name string, v []float32) safetensors.Tensor {
	return safetensors.FromFloat32(name, []int64{int64(len(v))}, v)
}

// readBatch reads the gradients of a finished batch for its rows.
func readBatch(path string, infos []SampleInfo) ([]gradangle.Sample, error) {
	f, err := safetensors.Read(path)
	if err != nil {
		return nil, err
	}
	out := make([]gradangle.Sample, len(infos))
	for r, info := range infos {
		s := gradangle.Sample{ID: fmt.Sprintf("%s#%d", info.ID, info.Sample)}
		for _, kind := range []struct {
			name string
			dst  *[]float32
		}{{"reason", &s.Reason}, {"tool", &s.Tool}} {
			t, err := f.Get(fmt.Sprintf("%d.%s", r, kind.name))
			if err != nil {
				return nil, err
			}
			if *kind.dst, err = t.Float32s(); err != nil {
				return nil, err
			}
			if len(*kind.dst) == 0 {
				*kind.dst = nil
			}
		}
		out[r] = s
	}
	return out, nil
}

// readInfos reads the rows of the finished batches; a torn last line is
// ignored (its batch is redone).
func readInfos(path string) ([]SampleInfo, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("gradanglerun: %w", err)
	}
	var out []SampleInfo
	lines := bytes.Split(b, []byte("\n"))
	for i, line := range lines {
		if i == len(lines)-1 || len(bytes.TrimSpace(line)) == 0 {
			continue // the text after the last newline: empty or torn
		}
		var info SampleInfo
		if err := json.Unmarshal(line, &info); err != nil {
			return nil, fmt.Errorf("gradanglerun: %s:%d: %w (remove %s to start over)", path, i+1, jsonerr.Describe(err), filepath.Dir(path))
		}
		out = append(out, info)
	}
	return out, nil
}

// appendInfos appends a batch's rows and syncs the file.
func appendInfos(path string, infos []SampleInfo) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, i := range infos {
		if err := enc.Encode(i); err != nil {
			return fmt.Errorf("gradanglerun: encode sample: %w", err)
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("gradanglerun: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("gradanglerun: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("gradanglerun: sync %s: %w", path, err)
	}
	return nil
}

func write(dir string, rep *Report) error {
	var sb bytes.Buffer
	enc := json.NewEncoder(&sb)
	for _, i := range rep.Info {
		if err := enc.Encode(i); err != nil {
			return fmt.Errorf("gradanglerun: encode sample: %w", err)
		}
	}
	nonNil := func(v []float64) []float64 {
		if v == nil {
			return []float64{}
		}
		return v
	}
	angles, err := json.MarshalIndent(map[string]any{
		"reason_tool": nonNil(rep.Angles.ReasonTool), "reason_reason": nonNil(rep.Angles.ReasonReason),
		"tool_tool": nonNil(rep.Angles.ToolTool), "unit": "degrees",
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("gradanglerun: encode angles: %w", err)
	}
	summary, err := json.MarshalIndent(rep.Summary, "", "  ")
	if err != nil {
		return fmt.Errorf("gradanglerun: encode summary: %w", err)
	}
	for name, b := range map[string][]byte{SamplesFile: sb.Bytes(), AnglesFile: append(angles, '\n'), SummaryFile: append(summary, '\n')} {
		if err := atomicfile.WriteFile(filepath.Join(dir, name), b); err != nil {
			return fmt.Errorf("gradanglerun: write %s: %w", name, err)
		}
	}
	if len(rep.Angles.ReasonTool)+len(rep.Angles.ReasonReason)+len(rep.Angles.ToolTool) > 0 {
		if err := rep.Angles.WriteHistogram(filepath.Join(dir, HistogramFile)); err != nil {
			return fmt.Errorf("gradanglerun: histogram: %w", err)
		}
	}
	return nil
}
