package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/eval"
	"github.com/dartc/dartc/grpo"
	"github.com/dartc/dartc/internal/jsonerr"
	"github.com/dartc/dartc/retrieval"
	"github.com/dartc/dartc/retrieval/connect"
	"github.com/dartc/dartc/retrieval/httpretrieve"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/runtime/agent"
	"github.com/dartc/dartc/trajectory"
	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
)

func init() { register(trainCommand) }

// trainOverrides maps each config flag to the Config field it sets; a flag
// given on the command line wins over the --config file.
var trainOverrides = []struct {
	flag cli.Flag
	set  func(c *cli.Context, cfg *grpo.Config)
	def  func(cfg grpo.Config) any // the default shown by --help
}{
	{&cli.IntFlag{Name: "steps", Usage: "GRPO steps"}, func(c *cli.Context, g *grpo.Config) { g.Steps = c.Int("steps") }, func(g grpo.Config) any { return g.Steps }},
	{&cli.IntFlag{Name: "prompts", Usage: "prompts per step"}, func(c *cli.Context, g *grpo.Config) { g.Prompts = c.Int("prompts") }, func(g grpo.Config) any { return g.Prompts }},
	{&cli.IntFlag{Name: "group", Usage: "rollouts per prompt (G)"}, func(c *cli.Context, g *grpo.Config) { g.Group = c.Int("group") }, func(g grpo.Config) any { return g.Group }},
	{&cli.IntFlag{Name: "mini-batch", Usage: "rollouts per optimizer update (0: all of a step)"}, func(c *cli.Context, g *grpo.Config) { g.MiniBatch = c.Int("mini-batch") }, func(g grpo.Config) any { return g.MiniBatch }},
	{&cli.IntFlag{Name: "micro-batch", Usage: "rollouts per train.onnx call"}, func(c *cli.Context, g *grpo.Config) { g.MicroBatch = c.Int("micro-batch") }, func(g grpo.Config) any { return g.MicroBatch }},
	{&cli.StringFlag{Name: "variant", Usage: "dual, single or two-agent"}, func(c *cli.Context, g *grpo.Config) { g.Variant = c.String("variant") }, func(g grpo.Config) any { return g.Variant }},
	{&cli.StringFlag{Name: "grad-tokens", Usage: "tokens that carry loss: all, reason or tool"}, func(c *cli.Context, g *grpo.Config) { g.GradTokens = c.String("grad-tokens") }, func(g grpo.Config) any { return g.GradTokens }},
	{&cli.StringFlag{Name: "isolation", Usage: "default (one backward over the whole loss) or strict (each adapter gets only its own role's token losses; a train pass per role)"}, func(c *cli.Context, g *grpo.Config) { g.Isolation = c.String("isolation") }, func(g grpo.Config) any { return g.Isolation }},
	{&cli.StringFlag{Name: "loss-agg", Usage: "token-mean or seq-mean-token-mean"}, func(c *cli.Context, g *grpo.Config) { g.LossAgg = c.String("loss-agg") }, func(g grpo.Config) any { return g.LossAgg }},
	{&cli.Float64Flag{Name: "lr", Usage: "peak learning rate"}, func(c *cli.Context, g *grpo.Config) { g.LR = c.Float64("lr") }, func(g grpo.Config) any { return g.LR }},
	{&cli.Float64Flag{Name: "warmup-ratio", Usage: "fraction of the updates with linear warmup"}, func(c *cli.Context, g *grpo.Config) { g.WarmupRatio = c.Float64("warmup-ratio") }, func(g grpo.Config) any { return g.WarmupRatio }},
	{&cli.Float64Flag{Name: "kl-coef", Usage: "coefficient of the k3 KL to the base"}, func(c *cli.Context, g *grpo.Config) { g.KLCoef = c.Float64("kl-coef") }, func(g grpo.Config) any { return g.KLCoef }},
	{&cli.Float64Flag{Name: "entropy-coeff", Usage: "coefficient of the entropy bonus (loss −= coeff·Σ w·entropy)"}, func(c *cli.Context, g *grpo.Config) { g.EntropyCoeff = c.Float64("entropy-coeff") }, func(g grpo.Config) any { return g.EntropyCoeff }},
	{&cli.Float64Flag{Name: "clip", Usage: "clip ε (both sides)"}, func(c *cli.Context, g *grpo.Config) { g.ClipLow, g.ClipHigh = c.Float64("clip"), c.Float64("clip") }, func(g grpo.Config) any { return g.ClipLow }},
	{&cli.Float64Flag{Name: "clip-low", Usage: "clip ε below 1 (ratio ≥ 1 − ε)"}, func(c *cli.Context, g *grpo.Config) { g.ClipLow = c.Float64("clip-low") }, func(g grpo.Config) any { return g.ClipLow }},
	{&cli.Float64Flag{Name: "clip-high", Usage: "clip ε above 1 (ratio ≤ 1 + ε; DAPO's clip-higher)"}, func(c *cli.Context, g *grpo.Config) { g.ClipHigh = c.Float64("clip-high") }, func(g grpo.Config) any { return g.ClipHigh }},
	{&cli.Float64Flag{Name: "beta1", Usage: "AdamW β₁"}, func(c *cli.Context, g *grpo.Config) { g.Beta1 = c.Float64("beta1") }, func(g grpo.Config) any { return g.Beta1 }},
	{&cli.Float64Flag{Name: "beta2", Usage: "AdamW β₂"}, func(c *cli.Context, g *grpo.Config) { g.Beta2 = c.Float64("beta2") }, func(g grpo.Config) any { return g.Beta2 }},
	{&cli.Float64Flag{Name: "eps", Usage: "AdamW ε"}, func(c *cli.Context, g *grpo.Config) { g.Eps = c.Float64("eps") }, func(g grpo.Config) any { return g.Eps }},
	{&cli.Float64Flag{Name: "weight-decay", Usage: "AdamW decoupled weight decay"}, func(c *cli.Context, g *grpo.Config) { g.WeightDecay = c.Float64("weight-decay") }, func(g grpo.Config) any { return g.WeightDecay }},
	{&cli.Float64Flag{Name: "max-grad-norm", Usage: "clip the adapters' global gradient norm to this (0: no clipping)"}, func(c *cli.Context, g *grpo.Config) { g.MaxGradNorm = c.Float64("max-grad-norm") }, func(g grpo.Config) any { return g.MaxGradNorm }},
	{&cli.Float64Flag{Name: "temperature", Usage: "sampling temperature"}, func(c *cli.Context, g *grpo.Config) { g.Temperature = c.Float64("temperature") }, func(g grpo.Config) any { return g.Temperature }},
	{&cli.Float64Flag{Name: "top-p", Usage: "nucleus sampling mass"}, func(c *cli.Context, g *grpo.Config) { g.TopP = c.Float64("top-p") }, func(g grpo.Config) any { return g.TopP }},
	{&cli.IntFlag{Name: "max-turns", Usage: "turns that may search"}, func(c *cli.Context, g *grpo.Config) { g.MaxTurns = c.Int("max-turns") }, func(g grpo.Config) any { return g.MaxTurns }},
	{&cli.IntFlag{Name: "max-turn-tokens", Usage: "tokens generated per turn"}, func(c *cli.Context, g *grpo.Config) { g.MaxTurnTokens = c.Int("max-turn-tokens") }, func(g grpo.Config) any { return g.MaxTurnTokens }},
	{&cli.IntFlag{Name: "max-obs-tokens", Usage: "tokens of retrieved passages kept per observation"}, func(c *cli.Context, g *grpo.Config) { g.MaxObsTokens = c.Int("max-obs-tokens") }, func(g grpo.Config) any { return g.MaxObsTokens }},
	{&cli.IntFlag{Name: "retrieve-tries", Usage: "attempts per search request to a /retrieve URL"}, func(c *cli.Context, g *grpo.Config) { g.RetrieveTries = c.Int("retrieve-tries") }, func(g grpo.Config) any { return g.RetrieveTries }},
	{&cli.BoolFlag{Name: "recompute-old-logprobs", Usage: "recompute the old policy's log-probs with logprobs.onnx instead of taking the sampler's"}, func(c *cli.Context, g *grpo.Config) { g.RecomputeOldLP = c.Bool("recompute-old-logprobs") }, func(g grpo.Config) any { return g.RecomputeOldLP }},
	{&cli.IntFlag{Name: "topk", Usage: "passages per search"}, func(c *cli.Context, g *grpo.Config) { g.TopK = c.Int("topk") }, func(g grpo.Config) any { return g.TopK }},
	{&cli.Uint64Flag{Name: "seed", Usage: "seed of the data order and the rollouts"}, func(c *cli.Context, g *grpo.Config) { g.Seed = c.Uint64("seed") }, func(g grpo.Config) any { return g.Seed }},
	{&cli.IntFlag{Name: "checkpoint-every", Usage: "steps between checkpoints (0: only at the end and on a signal)"}, func(c *cli.Context, g *grpo.Config) { g.CheckpointEvery = c.Int("checkpoint-every") }, func(g grpo.Config) any { return g.CheckpointEvery }},
	{&cli.IntFlag{Name: "keep-checkpoints", Usage: "checkpoints kept (older ones are removed)"}, func(c *cli.Context, g *grpo.Config) { g.KeepCheckpoints = c.Int("keep-checkpoints") }, func(g grpo.Config) any { return g.KeepCheckpoints }},
	{&cli.IntFlag{Name: "max-nonfinite", Usage: "consecutive updates skipped for a non-finite loss or gradient before the run stops"}, func(c *cli.Context, g *grpo.Config) { g.MaxNonFinite = c.Int("max-nonfinite") }, func(g grpo.Config) any { return g.MaxNonFinite }},
	{&cli.IntFlag{Name: "threads", Usage: "ONNX Runtime intra-op threads (0: its default)"}, func(c *cli.Context, g *grpo.Config) { g.Threads = c.Int("threads") }, func(g grpo.Config) any { return g.Threads }},
	{&cli.BoolFlag{Name: "low-memory", Usage: "return train/logprobs memory after each run instead of keeping ONNX Runtime's arena (slower)"}, func(c *cli.Context, g *grpo.Config) { g.LowMemory = c.Bool("low-memory") }, func(g grpo.Config) any { return g.LowMemory }},
}

var trainCommand = &cli.Command{
	Name:      "train",
	Usage:     "train the dual LoRA adapters of a compiled model with GRPO against a search engine",
	ArgsUsage: " ",
	Description: `Runs GRPO with Search-R1's algorithm (G = 5, clip 0.2, k3 KL 0.001 to the base,
temperature 1, top-p 0.95, top-3 passages, EM reward) over the questions of --data, rolling
out with the Search-R1 agent loop against --search (a BM25 index file or a /retrieve URL).

The defaults (--preset cpu) run on a 2-core CPU with the demo model: 2 prompts a step, 2
search turns of 64 tokens, observations of 128, one rollout per train.onnx call.
--preset search-r1 starts from Search-R1's scale instead (512 prompts, 4 turns of 500
tokens, observations of 500, 256 rollouts per update, 1005 steps).

Before the first step it prints an estimate of a step's peak memory and time (from the
manifest's shapes and vocabulary, the batch and the longest rollout, with the forward rate
and the time per sampled token measured on this machine) and refuses to start when the
memory exceeds this machine's, unless --yes. Every step prints a line: reward, EM, loss,
KL, clip fraction and each phase's time.

Settings come from the preset, then --config FILE (YAML; keys as in RUN/config.yaml),
then the flags. Variants: --variant dual (DART: each position runs its role's adapter),
single (one LoRA for every token), two-agent (each role encodes the whole context with
its own adapter); --grad-tokens all|reason|tool restricts the loss to one kind of token
(with single: LEAS's M_Reas, M_Tool, M_Unified). --isolation default takes one backward
over the whole loss: with mixed roles a token's loss also reaches, through attention, the
adapter of earlier positions of the other role; strict gives each adapter only its own
role's token losses (one train pass per role, about twice the train time).

--resume continues a run with the settings of its config.yaml; a flag that changes one is
refused unless --override names it (then config.yaml is rewritten), and so is other data
(--override data). A run made on another model or other initial adapters is refused, as
is a corrupt or inconsistent checkpoint. The run directory gets config.yaml, run.json
(sha256 of the model, the initial adapters and the data), metrics.jsonl (one row per step) and checkpoints/
step-N (adapters.safetensors, optimizer state, counters), written atomically every
--checkpoint-every steps, at the end and on SIGINT/SIGTERM. --resume continues from the
newest checkpoint. ` + "`dartc plot RUN`" + ` draws the curves. See docs/training.md.`,
	Flags: append([]cli.Flag{
		&cli.StringFlag{Name: "model", Usage: "compiled model directory (dartc compile)", Required: true},
		&cli.StringFlag{Name: "data", Usage: "training questions: FlashRAG or R1-Searcher JSONL, or Search-R1 parquet", Required: true},
		&cli.StringFlag{Name: "search", Usage: "BM25 index file (dartc search index) or /retrieve URL", Required: true},
		&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "run directory", Required: true},
		&cli.StringFlag{Name: "preset", Value: "cpu", Usage: "starting settings: cpu (a 2-core CPU with the demo model) or search-r1 (Search-R1's scale)"},
		&cli.StringFlag{Name: "config", Usage: "YAML settings file"},
		&cli.BoolFlag{Name: "yes", Usage: "start even when a step's estimated memory exceeds this machine's"},
		&cli.StringFlag{Name: "tokenizer", Usage: "tokenizer directory (default: the one compiled into --model, else the bundled Qwen2 one)"},
		&cli.BoolFlag{Name: "resume", Usage: "continue from the newest checkpoint of --out, with the settings of its config.yaml"},
		&cli.StringSliceFlag{Name: "override", Usage: "with --resume: settings (or data) that may differ from the run's, e.g. --override steps,lr; config.yaml is rewritten"},
		&cli.BoolFlag{Name: "no-progress", Usage: "no progress bar on stderr"},
		deviceFlag,
	}, overrideFlags()...),
	Action: runTrain,
}

// overrideFlags returns the setting flags with Search-R1's defaults as
// their values, so that --help shows them; a flag still overrides the
// config file only when given.
func overrideFlags() []cli.Flag {
	def := grpo.DefaultConfig()
	fs := make([]cli.Flag, len(trainOverrides))
	for i, o := range trainOverrides {
		switch f := o.flag.(type) {
		case *cli.IntFlag:
			f.Value = o.def(def).(int)
		case *cli.Float64Flag:
			f.Value = o.def(def).(float64)
		case *cli.StringFlag:
			f.Value = o.def(def).(string)
		case *cli.Uint64Flag:
			f.Value = o.def(def).(uint64)
		case *cli.BoolFlag:
			f.Value = o.def(def).(bool)
		}
		fs[i] = o.flag
	}
	return fs
}

// trainWarnings lists settings that are valid but make GRPO learn
// nothing, said before a run spends time on them.
func trainWarnings(cfg grpo.Config) []string {
	var ws []string
	if cfg.Group == 1 {
		ws = append(ws, "group 1: GRPO's advantage is a rollout's reward minus its group's mean, so with one rollout per prompt every advantage is 0 and the adapters do not change; use group ≥ 2 (Search-R1: 5)")
	}
	if cfg.Temperature == 0 {
		ws = append(ws, "temperature 0: rollouts are greedy, so the rollouts of a prompt are identical, their advantages 0, and the adapters do not change; sample (Search-R1: temperature 1)")
	}
	return ws
}

// trainConfig resolves the settings: the preset (with --resume: the run's
// config.yaml), then the file, then flags.
func trainConfig(c *cli.Context) (grpo.Config, error) {
	cfg, err := grpo.Preset(c.String("preset"))
	if err != nil {
		return cfg, err
	}
	if c.Bool("resume") {
		if c.IsSet("preset") {
			return cfg, errors.New("--preset with --resume: a resumed run keeps the settings in RUN/config.yaml; change single settings with their flags and --override KEY")
		}
		recorded := filepath.Join(c.String("out"), grpo.ConfigFile)
		if cfg, err = grpo.LoadConfig(recorded); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return cfg, err
		}
	}
	if path := c.String("config"); path != "" {
		if cfg, err = grpo.LoadConfigOver(cfg, path); err != nil {
			if d := jsonerr.DescribeYAML(err); d != err {
				return cfg, fmt.Errorf("config %s: %w", path, d)
			}
			return cfg, err
		}
	}
	for _, o := range trainOverrides {
		if c.IsSet(o.flag.Names()[0]) {
			o.set(c, &cfg)
		}
	}
	return cfg, cfg.Validate()
}

func runTrain(c *cli.Context) error {
	// The signal context covers the start-up too (opening sessions and
	// the index can take minutes): a signal before the first step stops
	// the command there, with nothing trained.
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	started := func() error {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("train: stopped before the first step: %w", err)
		}
		return nil
	}
	cfg, err := trainConfig(c)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	for _, w := range trainWarnings(cfg) {
		slog.Warn(w)
	}
	if _, err := runtime.Init(); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	data, err := eval.Load(c.String("data"))
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	searcher, err := connect.Open(c.String("search"), httpretrieve.ClientOptions{MaxAttempts: cfg.RetrieveTries})
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if cl, ok := searcher.(interface{ Close() error }); ok {
		defer cl.Close()
	}
	sess := &runtime.Options{Device: c.String(deviceFlag.Name), IntraOpThreads: cfg.Threads}
	prog := newTrainProgress(c.App.ErrWriter, cfg, !c.Bool("no-progress") && isTerminal(c.App.ErrWriter))
	roller, err := newAgentRoller(c.String("model"), c.String("tokenizer"), searcher, cfg, sess, prog.token)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	defer roller.a.Close()
	if err := roller.a.CheckPrompts(questions(data)); err != nil {
		return fmt.Errorf("train: --data %s: %w", c.String("data"), err)
	}
	if err := started(); err != nil {
		return err
	}

	man, err := manifest.Read(c.String("model"))
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	est := grpo.EstimateStep(man, c.String("model"), cfg, longestPrompt(roller.a, data))
	if err := checkMemory(est, grpo.MemoryLimit(), c.String(deviceFlag.Name), c.Bool("yes")); err != nil {
		return fmt.Errorf("train: %w", err)
	}
	tr, err := grpo.New(grpo.Options{
		Model: c.String("model"), Run: c.String("out"), Config: cfg, Data: data, Roller: roller,
		Resume: c.Bool("resume"), Override: splitOverrides(c.StringSlice("override")), Device: c.String(deviceFlag.Name), Log: slog.Default(),
		OnPhase: prog.phase,
		OnStep: func(m grpo.Metrics) {
			prog.clear()
			fmt.Fprintln(c.App.ErrWriter, stepLine(m, cfg.Steps))
			prog.stepDone(m.Step)
		},
	})
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	defer tr.Close()
	if err := started(); err != nil {
		return err
	}
	rate, err := tr.Calibrate(grpo.CalibrationTokens(man))
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	adapters, err := tr.Adapters()
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	stepSec, rows, err := roller.decodeStep(ctx, data[0], adapters, cfg)
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	if err := started(); err != nil {
		return err
	}
	fmt.Fprintf(c.App.ErrWriter, "train: estimate for one step: %s\n", est.WithRates(rate, stepSec, rows))
	prog.start(tr.State().Step)
	err = tr.Run(ctx)
	prog.exit()
	if err != nil {
		return fmt.Errorf("train: %w", err)
	}
	ck, _ := grpo.LatestCheckpoint(c.String("out"))
	fmt.Fprintf(c.App.Writer, "trained %d steps; metrics %s/%s; adapters %s\n", tr.State().Step, c.String("out"), grpo.MetricsFile, ck)
	return nil
}

// agentRoller rolls out with the Search-R1 agent loop.
type agentRoller struct{ a *agent.Agent }

// newAgentRoller opens the agent; onToken, when set, is called for every
// token that enters a rollout's response (the progress bar).
func newAgentRoller(model, tok string, s retrieval.Searcher, cfg grpo.Config, sess *runtime.Options, onToken func()) (*agentRoller, error) {
	ac := agent.Config{
		Model: model, Tokenizer: tok, Session: sess, Searcher: s, TopK: cfg.TopK,
		MaxTurns: cfg.MaxTurns, MaxTurnTokens: cfg.MaxTurnTokens, MaxObsTokens: cfg.MaxObsTokens,
		Sampling: runtime.Sampling{Temperature: cfg.Temperature, TopP: cfg.TopP},
		TwoAgent: cfg.Variant == grpo.VariantTwoAgent,
	}
	if onToken != nil {
		ac.Stream = func(int, []byte) { onToken() }
	}
	a, err := agent.New(ac)
	if err != nil {
		return nil, err
	}
	return &agentRoller{a: a}, nil
}

func (r *agentRoller) Rollout(ctx context.Context, examples []eval.Example, group int, adapters map[string]*runtime.Tensor, seed uint64) ([]*trajectory.Trajectory, error) {
	if err := r.a.SetAdapters(adapters); err != nil {
		return nil, err
	}
	return r.a.Run(ctx, questions(examples), group, seed)
}

var _ grpo.ResidentRoller = (*agentRoller)(nil)

// RolloutResident rolls out with the trainer's adapters read in place on
// its device; adapters that decode.onnx takes in another layout (a float64
// training graph) are read back and fed as Go tensors.
func (r *agentRoller) RolloutResident(ctx context.Context, examples []eval.Example, group int, adapters map[string]*runtime.DeviceTensor, seed uint64) ([]*trajectory.Trajectory, error) {
	if err := r.a.UseResidentAdapters(adapters); err != nil {
		host := make(map[string]*runtime.Tensor, len(adapters))
		for n, d := range adapters {
			t, derr := d.Download()
			if derr != nil {
				return nil, derr
			}
			host[n] = t
		}
		return r.Rollout(ctx, examples, group, host, seed)
	}
	return r.a.Run(ctx, questions(examples), group, seed)
}

// questions turns dataset rows into the agent's questions.
func questions(examples []eval.Example) []agent.Question {
	qs := make([]agent.Question, len(examples))
	for i, ex := range examples {
		qs[i] = agent.Question{ID: ex.ID, Question: ex.Question, Golden: ex.Golden}
	}
	return qs
}

// decodeStep measures one decode step (decode.onnx and sampling) of a
// step's rollouts, up to 8 rows of ex's prompt: a warm-up and a timed
// generation of 8 tokens with the run's sampling settings. It returns the
// seconds per step and the rows.
func (r *agentRoller) decodeStep(ctx context.Context, ex eval.Example, adapters map[string]*runtime.Tensor, cfg grpo.Config) (float64, int, error) {
	const n = 8
	rows := min(8, cfg.RolloutsPerStep())
	prompts := make([][]int64, rows)
	for i := range prompts {
		prompts[i] = r.a.PromptIDs(ex.Question)
	}
	var per time.Duration
	for range 2 {
		t0 := time.Now()
		seqs, _, err := r.a.Decoder().Generate(ctx, prompts, runtime.GenerateConfig{
			MaxNewTokens: n, Sampling: runtime.Sampling{Temperature: cfg.Temperature, TopP: cfg.TopP}, Seed: 1, Inputs: adapters})
		if err != nil {
			return 0, 0, fmt.Errorf("time a decode step: %w", err)
		}
		steps := 0
		for _, s := range seqs {
			steps = max(steps, len(s.Tokens))
		}
		per = time.Since(t0) / time.Duration(max(1, steps))
	}
	return per.Seconds(), rows, nil
}

// longestPrompt is the token count of the longest question's prompt (the
// first 10,000 questions).
func longestPrompt(a *agent.Agent, data []eval.Example) int {
	longest := 0
	for _, ex := range data[:min(len(data), 10000)] {
		longest = max(longest, len(a.PromptIDs(ex.Question)))
	}
	return longest
}

// checkMemory refuses a CPU run whose estimated peak memory exceeds the
// machine's (limit bytes; 0: unknown), unless yes.
func checkMemory(est grpo.Estimate, limit float64, device string, yes bool) error {
	if yes || limit <= 0 || device == "cuda" || est.PeakBytes <= limit {
		return nil
	}
	gib := func(b float64) float64 { return b / (1 << 30) }
	return fmt.Errorf("a step needs about %.1f GiB but this machine has %.1f GiB available (%s): lower --micro-batch (rollouts per train.onnx call: the activations grow with it), --max-turn-tokens, --max-obs-tokens or --max-turns, add --low-memory, or pass --yes to start anyway",
		gib(est.PeakBytes), gib(limit), est)
}

// stepLine is the line printed after every step.
func stepLine(m grpo.Metrics, steps int) string {
	kl := "off" // kl_coef 0: not measured
	if m.KL != nil {
		kl = fmt.Sprintf("%.5f", *m.KL)
	}
	s := fmt.Sprintf("step %d/%d  reward %.3f ± %.3f  em %.3f  loss %.5f  kl %s  clip %.3f  | rollout %.1f s  reference %.1f s  train %.1f s  optimizer %.2f s  step %.1f s",
		m.Step, steps, m.RewardMean, m.RewardStd, m.EM, m.Loss, kl, m.ClipFrac,
		m.RolloutSeconds, m.ReferenceSeconds, m.TrainSeconds, m.OptimizerSeconds, m.StepSeconds)
	if m.NonFinite {
		s += "  (update skipped: non-finite)"
	}
	return s
}

// trainProgress is the progress bar of a run, in thousandths of a step: a
// step's rollout moves it by the share of the tokens its rollouts may add
// (up to 0.9 of the step), then the reference and train phases are named,
// and the step's end sets it to the step. Nil bar: nothing is drawn.
type trainProgress struct {
	bar       *progressbar.ProgressBar
	steps     int
	maxTokens int64 // tokens a step's rollouts may add

	mu     sync.Mutex
	done   int   // completed steps
	tokens int64 // tokens of the current step's rollouts
	last   time.Time
}

const (
	progressUnits   = 1000 // per step
	progressRollout = 900  // of them, the rollout's share
)

func newTrainProgress(w io.Writer, cfg grpo.Config, on bool) *trainProgress {
	p := &trainProgress{steps: cfg.Steps,
		maxTokens: int64(cfg.RolloutsPerStep()) * int64((cfg.MaxTurns+1)*cfg.MaxTurnTokens+cfg.MaxTurns*cfg.MaxObsTokens)}
	if on {
		p.bar = progressbar.NewOptions64(int64(cfg.Steps)*progressUnits,
			progressbar.OptionSetWriter(w), progressbar.OptionSetDescription("train"),
			progressbar.OptionSetPredictTime(true), progressbar.OptionShowElapsedTimeOnFinish(),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	return p
}

// start draws the bar at the steps already done (a resumed run).
func (p *trainProgress) start(done int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.tokens = done, 0
	if p.bar != nil {
		p.bar.Set64(int64(done) * progressUnits)
		p.bar.Describe(fmt.Sprintf("step %d/%d: rollout", done+1, p.steps))
	}
}

// token counts one token entering a rollout and, at most every 100 ms,
// moves the bar.
func (p *trainProgress) token() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tokens++
	if p.bar == nil || time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.bar.Set64(p.position())
	p.bar.Describe(fmt.Sprintf("step %d/%d: rollout, %d tokens", p.done+1, p.steps, p.tokens))
}

// position is the bar's value: completed steps plus the rollout's share.
func (p *trainProgress) position() int64 {
	frac := int64(progressRollout)
	if p.maxTokens > 0 {
		frac = min(frac, progressRollout*p.tokens/p.maxTokens)
	}
	return int64(p.done)*progressUnits + frac
}

// phase names the phase that starts (the rollout's share is then full).
func (p *trainProgress) phase(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.bar == nil || name == "rollout" {
		return
	}
	p.bar.Set64(int64(p.done)*progressUnits + progressRollout)
	p.bar.Describe(fmt.Sprintf("step %d/%d: %s", p.done+1, p.steps, name))
}

// stepDone moves the bar to the end of step.
func (p *trainProgress) stepDone(step int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done, p.tokens = step, 0
	if p.bar != nil {
		p.bar.Set64(int64(step) * progressUnits)
		p.bar.Describe(fmt.Sprintf("step %d/%d: rollout", step+1, p.steps))
	}
}

// clear removes the bar from the terminal before a line is printed; the
// next update draws it again.
func (p *trainProgress) clear() {
	if p.bar != nil {
		p.bar.Clear()
	}
}

func (p *trainProgress) exit() {
	if p.bar != nil {
		p.bar.Exit()
	}
}

// splitOverrides flattens --override values given repeated or comma-separated.
func splitOverrides(vs []string) []string {
	var out []string
	for _, v := range vs {
		for _, k := range strings.Split(v, ",") {
			if k = strings.TrimSpace(k); k != "" {
				out = append(out, k)
			}
		}
	}
	return out
}
