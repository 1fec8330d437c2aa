package leasrun

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/dartc/dartc/internal/atomicfile"
	"github.com/dartc/dartc/internal/filehash"
	"github.com/dartc/dartc/internal/jsonerr"

	"github.com/dartc/dartc/eval"
	"github.com/dartc/dartc/eval/leas"
	"github.com/dartc/dartc/eval/run"
	"github.com/dartc/dartc/grpo"
	"github.com/dartc/dartc/peft"
	"github.com/dartc/dartc/runtime/agent"
	"github.com/dartc/dartc/safetensors"
	"github.com/schollz/progressbar/v3"
)

// File names in the output directory.
const (
	RolloutsFile  = "rollouts.jsonl"
	QuestionsFile = "questions.jsonl"
	ResultsFile   = "results.jsonl"
	SummaryFile   = "summary.json"
	HistogramFile = "lambda23.png"
)

// Command is the name `dartc leas` records in settings.json.
const Command = "leas"

// Defaults.
const (
	DefaultK     = 8
	DefaultBatch = 4
)

// Options configure Run.
type Options struct {
	// Agent configures the rollouts (model, tokenizer, searcher, sampling,
	// turns); its Adapters field is ignored.
	Agent agent.Config
	// Trained maps leas.Reas, leas.Tool and leas.Unified to their adapter
	// files in the dual layout.
	Trained  map[leas.Config]string
	Datasets []string
	Limit    int     // questions per dataset, 0: all
	K        int     // samples per question and configuration [DefaultK]
	Batch    int     // questions per agent run [DefaultBatch]
	Seed     uint64  // sampling seed
	Alpha    float64 // smoothing, finite and > 0 (0: leas.DefaultAlpha)
	Dir      string  // output directory: new, empty or leas's own (CheckOutput)
	Progress io.Writer
	// Search names the search backend as given (recorded in the settings).
	Search string
}

// Rollout is one line of rollouts.jsonl.
type Rollout struct {
	Config   string  `json:"config"`
	ID       string  `json:"id"`
	Source   string  `json:"data_source"`
	Sample   int     `json:"sample"`
	Answer   string  `json:"answer"`
	EM       float64 `json:"em"`
	Stop     string  `json:"stop"`
	Searches int     `json:"searches"`
	Policy   int     `json:"policy_tokens"`
	// Fingerprint is an FNV-1a hash of the response's token ids: equal
	// fingerprints mean identical rollouts.
	Fingerprint string `json:"fingerprint"`
	// Run is the SettingsID of the run's settings (run.CheckSettings).
	Run string `json:"run,omitempty"`
}

func (r Rollout) key() string {
	return r.Config + "\x00" + r.Source + "\x00" + r.ID + "\x00" + strconv.Itoa(r.Sample)
}

func fingerprint(ids []int64) string {
	h := fnv.New64a()
	var b [8]byte
	for _, id := range ids {
		binary.LittleEndian.PutUint64(b[:], uint64(id))
		h.Write(b[:])
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// Report is what Run returns.
type Report struct {
	Questions []leas.Question
	Results   []leas.Result
	Summary   leas.Summary
	Rollouts  []Rollout
	// Resumed counts the (configuration, question) pairs taken from an
	// interrupted run's rollouts.jsonl.
	Resumed int
	Elapsed time.Duration
}

// loadTrained reads the three trained adapter files.
func loadTrained(paths map[leas.Config]string) (map[leas.Config]*safetensors.File, error) {
	out := map[leas.Config]*safetensors.File{}
	for _, c := range []leas.Config{leas.Reas, leas.Tool, leas.Unified} {
		p := paths[c]
		if p == "" {
			return nil, fmt.Errorf("leasrun: no adapter file for %v (LEAS needs M_Reas, M_Tool and M_Unified)", c)
		}
		f, err := safetensors.Read(p)
		if err != nil {
			return nil, fmt.Errorf("leasrun: %v adapters: %w", c, err)
		}
		if err := f.CheckFinite(); err != nil {
			return nil, fmt.Errorf("leasrun: %v adapters %s: %w: the adapters are corrupt (a diverged run?)", c, p, err)
		}
		if err := checkTrained(c, p, f); err != nil {
			return nil, err
		}
		out[c] = f
	}
	return out, nil
}

// wantGradTokens is the loss filter each trained configuration is made
// with: the paper's M_Reas, M_Tool and M_Unified are each one adapter
// shared by every token, trained with the loss on reasoning tokens, tool
// tokens or all tokens.
var wantGradTokens = map[leas.Config]string{leas.Reas: grpo.GradReason, leas.Tool: grpo.GradTool, leas.Unified: grpo.GradAll}

// checkTrained refuses an adapter file that is not the kind configuration
// c needs, as recorded in the metadata of a `dartc train` checkpoint, and
// one whose two role slots differ (a single adapter fills both).
func checkTrained(c leas.Config, path string, f *safetensors.File) error {
	grad := wantGradTokens[c]
	fix := fmt.Sprintf("make it with `dartc train --variant single --grad-tokens %s` and pass RUN/checkpoints/step-N/adapters.safetensors", grad)
	variant, gt := f.Metadata[grpo.MetaVariant], f.Metadata[grpo.MetaGradTokens]
	switch {
	case variant == "":
		return fmt.Errorf("leasrun: %v adapters %s: no training metadata (variant, grad_tokens), so not a `dartc train` checkpoint; %v is one adapter shared by every token, trained with the loss on %s tokens: %s",
			c, path, c, grad, fix)
	case variant != grpo.VariantSingle || gt != grad:
		if gt == "" {
			gt = grpo.GradAll
		}
		why := ""
		if variant == grpo.VariantDual && gt != grpo.GradAll {
			why = " (two adapters, one per role, with only one trained: closer to an H_ hybrid than to " + c.String() + ")"
		}
		return fmt.Errorf("leasrun: %v adapters %s were trained with --variant %s --grad-tokens %s%s; %v is one adapter shared by every token, trained with the loss on %s tokens: %s",
			c, path, variant, gt, why, c, grad, fix)
	}
	return sameSlots(c, path, f)
}

// sameSlots checks that every reasoning-slot tensor equals its tool-slot
// twin, as a single-variant checkpoint writes them.
func sameSlots(c leas.Config, path string, f *safetensors.File) error {
	for _, t := range f.Tensors {
		n, ok := peft.ParseAdapterName(t.Name)
		if !ok || n.Role != leas.ReasonRole {
			continue
		}
		n.Role = leas.ToolRole
		twin, err := f.Get(n.String())
		if err != nil {
			return fmt.Errorf("leasrun: %v adapters %s: %w", c, path, err)
		}
		if !bytes.Equal(t.Data, twin.Data) {
			return fmt.Errorf("leasrun: %v adapters %s: %s and %s differ, but a single-variant checkpoint holds one adapter in both slots; was the file edited?", c, path, t.Name, twin.Name)
		}
	}
	return nil
}

// setAdapters puts the tensors of configuration c into the agent, going
// through a temporary file so that agent.LoadAdapters checks names, shapes
// and dtypes against the decoder.
func setAdapters(a *agent.Agent, c leas.Config, trained map[leas.Config]*safetensors.File) error {
	ts, err := leas.Assemble(c, trained)
	if err != nil {
		return fmt.Errorf("leasrun: %w", err)
	}
	tmp, err := os.CreateTemp("", "dartc-leas-*.safetensors")
	if err != nil {
		return fmt.Errorf("leasrun: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if err := safetensors.Write(tmp.Name(), ts, nil); err != nil {
		return fmt.Errorf("leasrun: %w", err)
	}
	tensors, err := agent.LoadAdapters(tmp.Name(), a.Decoder().StaticInputs())
	if err != nil {
		return fmt.Errorf("leasrun: %v: %w", c, err)
	}
	return a.SetAdapters(tensors)
}

// settings describes what makes the run's rollouts: the agent's settings
// (run.AgentSettings, adapters aside), the three trained files' sha256,
// and the questions, k, batching and seed that fix every draw.
func settings(opts Options) (map[string]string, error) {
	cfg := opts.Agent
	cfg.Adapters = ""
	s, err := run.AgentSettings(cfg, opts.Search)
	if err != nil {
		return nil, fmt.Errorf("leasrun: %w", err)
	}
	delete(s, "adapters")
	for _, c := range []leas.Config{leas.Reas, leas.Tool, leas.Unified} {
		if s[c.String()], err = filehash.SHA256(opts.Trained[c]); err != nil {
			return nil, fmt.Errorf("leasrun: %w", err)
		}
	}
	s["datasets"] = fmt.Sprint(opts.Datasets)
	s["limit"], s["k"], s["batch"] = strconv.Itoa(opts.Limit), strconv.Itoa(opts.K), strconv.Itoa(opts.Batch)
	s["seed"] = strconv.FormatUint(opts.Seed, 10)
	return s, nil
}

// readRollouts reads the rollouts.jsonl of an interrupted run; a torn last
// line (no newline) is dropped, and valid is the length kept.
func readRollouts(path string) (rows []Rollout, valid int64, err error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("leasrun: %w", err)
	}
	for line := 1; int(valid) < len(b); line++ {
		nl := bytes.IndexByte(b[valid:], '\n')
		if nl < 0 {
			break
		}
		if len(bytes.TrimSpace(b[valid:valid+int64(nl)])) > 0 {
			var r Rollout
			if err := json.Unmarshal(b[valid:valid+int64(nl)], &r); err != nil {
				return nil, 0, fmt.Errorf("leasrun: %s:%d: %w (remove the file to start over)", path, line, jsonerr.Describe(err))
			}
			rows = append(rows, r)
		}
		valid += int64(nl + 1)
	}
	return rows, valid, nil
}

// Run rolls out the six configurations and writes the LEAS report. Each
// batch of questions of a configuration is appended to rollouts.jsonl (and
// synced) as it finishes, so a run stopped by an error or a signal resumes
// where it stopped: batches whose rollouts are all there are not rolled
// out again (their draws depend only on the seed and the batch), provided
// the settings are the same (run.CheckSettings).
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Dir == "" {
		return nil, errors.New("leasrun: no output directory")
	}
	if opts.K <= 0 {
		opts.K = DefaultK
	}
	if opts.Batch <= 0 {
		opts.Batch = DefaultBatch
	}
	// leas.Analyze would refuse it, but only after every rollout.
	if a := opts.Alpha; a != 0 && (!(a > 0) || math.IsInf(a, 0)) {
		return nil, fmt.Errorf("leasrun: smoothing alpha %v must be finite and > 0 (0 takes the default %v)", a, leas.DefaultAlpha)
	}
	if err := CheckOutput(opts.Dir); err != nil {
		return nil, fmt.Errorf("leasrun: %w", err)
	}
	trained, err := loadTrained(opts.Trained)
	if err != nil {
		return nil, err
	}
	exs, err := loadExamples(opts.Datasets, opts.Limit)
	if err != nil {
		return nil, err
	}
	set, err := settings(opts)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opts.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("leasrun: %w", err)
	}
	path := filepath.Join(opts.Dir, RolloutsFile)
	prev, valid, err := readRollouts(path)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(prev))
	for i, r := range prev {
		ids[i] = r.Run
	}
	runID, err := run.CheckSettings(opts.Dir, Command, set, len(prev), ids, path)
	if err != nil {
		return nil, fmt.Errorf("leasrun: %w", err)
	}
	have := map[string]Rollout{}
	for _, r := range prev {
		have[r.key()] = r
	}
	cfg := opts.Agent
	cfg.Adapters = ""
	a, err := agent.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("leasrun: %w", err)
	}
	defer a.Close()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("leasrun: %w", err)
	}
	defer f.Close()
	if err := f.Truncate(valid); err != nil { // drop a torn last line
		return nil, fmt.Errorf("leasrun: %w", err)
	}
	if _, err := f.Seek(valid, io.SeekStart); err != nil {
		return nil, fmt.Errorf("leasrun: %w", err)
	}
	rep := &Report{Questions: make([]leas.Question, len(exs))}
	for i, ex := range exs {
		rep.Questions[i] = leas.Question{ID: ex.Source + "/" + ex.ID, K: opts.K}
	}
	var bar *progressbar.ProgressBar
	if opts.Progress != nil {
		bar = progressbar.NewOptions(int(leas.NumConfigs)*len(exs), progressbar.OptionSetWriter(opts.Progress),
			progressbar.OptionSetDescription("leas"), progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionOnCompletion(func() { fmt.Fprintln(opts.Progress) }))
	}
	count := func(qi int, r Rollout) {
		if r.EM == 1 {
			rep.Questions[qi].Correct[configIndex(r.Config)]++
		}
		rep.Rollouts = append(rep.Rollouts, r)
	}
	start := time.Now()
	for c := range leas.NumConfigs {
		adaptersSet := false
		for b := 0; b < len(exs); b += opts.Batch {
			batch := exs[b:min(b+opts.Batch, len(exs))]
			var done []Rollout
			for _, ex := range batch {
				for k := range opts.K {
					if r, ok := have[Rollout{Config: c.String(), Source: ex.Source, ID: ex.ID, Sample: k}.key()]; ok {
						done = append(done, r)
					}
				}
			}
			if len(done) == len(batch)*opts.K {
				for i, r := range done {
					count(b+i/opts.K, r)
				}
				rep.Resumed += len(batch)
				if bar != nil {
					bar.Add(len(batch))
				}
				continue
			}
			if !adaptersSet {
				if err := setAdapters(a, c, trained); err != nil {
					return nil, err
				}
				adaptersSet = true
			}
			qs := make([]agent.Question, len(batch))
			for i, ex := range batch {
				qs[i] = agent.Question{ID: ex.ID, Question: ex.Question, Golden: ex.Golden}
			}
			trs, err := a.Run(ctx, qs, opts.K, opts.Seed+uint64(b))
			if err != nil {
				return nil, fmt.Errorf("leasrun: %v, questions %d–%d: %w (rerun the same command to resume: finished batches are kept in %s)", c, b+1, b+len(batch), err, path)
			}
			var lines bytes.Buffer
			enc := json.NewEncoder(&lines)
			for r, tr := range trs {
				qi := b + r/opts.K
				ex := exs[qi]
				row := Rollout{Config: c.String(), ID: ex.ID, Source: ex.Source, Sample: r % opts.K,
					Answer: tr.Answer, EM: run.Score(tr.Answer, ex.Golden).EM, Stop: tr.Stop, Searches: len(tr.Searches), Policy: tr.PolicyTokens(),
					Fingerprint: fingerprint(tr.Tokens[tr.PromptLen:]), Run: runID}
				count(qi, row)
				if err := enc.Encode(row); err != nil {
					return nil, fmt.Errorf("leasrun: encode rollout: %w", err)
				}
			}
			if _, err := f.Write(lines.Bytes()); err != nil {
				return nil, fmt.Errorf("leasrun: write %s: %w", path, err)
			}
			if err := f.Sync(); err != nil {
				return nil, fmt.Errorf("leasrun: sync %s: %w", path, err)
			}
			if bar != nil {
				bar.Add(len(batch))
			}
		}
	}
	rep.Elapsed = time.Since(start)
	if rep.Results, err = leas.Analyze(rep.Questions, opts.Alpha); err != nil {
		return nil, fmt.Errorf("leasrun: %w", err)
	}
	rep.Summary = leas.Summarize(rep.Results)
	return rep, write(opts, rep)
}

// CheckOutput checks that `dartc leas` may write its report into dir
// (run.CheckDir): new, empty, or one it wrote.
func CheckOutput(dir string) error {
	return run.CheckDir(dir, Command, func(s map[string]string, names []string) bool {
		// Written before settings.json named its command: the settings of
		// the three trained files, and rollouts.jsonl — or settings.json
		// alone, when that leas stopped before its first rollout.
		_, reas := s[leas.Reas.String()]
		_, k := s["k"]
		return reas && k && (slices.Contains(names, RolloutsFile) || len(names) == 1)
	})
}

// configIndex is the index of a configuration's name.
func configIndex(name string) leas.Config {
	c, _ := leas.ParseConfig(name)
	return c
}

// loadExamples reads the datasets as `dartc eval` does (run.LoadQuestions):
// rollouts are resumed by (dataset, id), so two questions with the same
// dataset and id (nq_test.jsonl and nq_dev.jsonl rows without ids are both
// nq/0, nq/1, …) would take each other's rollouts; they are an error.
func loadExamples(paths []string, limit int) ([]eval.Example, error) {
	exs, err := run.LoadQuestions(paths, limit)
	if err != nil {
		return nil, fmt.Errorf("leasrun: %w", err)
	}
	return exs, nil
}

func write(opts Options, rep *Report) error {
	var rb, qb bytes.Buffer
	enc := json.NewEncoder(&rb)
	for _, r := range rep.Rollouts {
		if err := enc.Encode(r); err != nil {
			return fmt.Errorf("leasrun: encode rollout: %w", err)
		}
	}
	enc = json.NewEncoder(&qb)
	for _, q := range rep.Questions {
		if err := enc.Encode(q); err != nil {
			return fmt.Errorf("leasrun: encode question: %w", err)
		}
	}
	for name, b := range map[string][]byte{RolloutsFile: rb.Bytes(), QuestionsFile: qb.Bytes()} {
		if err := atomicfile.WriteFile(filepath.Join(opts.Dir, name), b); err != nil {
			return fmt.Errorf("leasrun: write %s: %w", name, err)
		}
	}
	if err := leas.WriteResults(filepath.Join(opts.Dir, ResultsFile), rep.Results); err != nil {
		return err
	}
	if err := leas.WriteSummary(filepath.Join(opts.Dir, SummaryFile), rep.Summary); err != nil {
		return err
	}
	if err := leas.WriteHistogram(filepath.Join(opts.Dir, HistogramFile), rep.Results); err != nil {
		return fmt.Errorf("leasrun: histogram: %w", err)
	}
	return nil
}
