package grpo

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Variant names (Config.Variant).
const (
	VariantDual     = "dual"      // DART: each position trains the adapter of its role
	VariantSingle   = "single"    // one LoRA (the role-0 slot) on every token
	VariantTwoAgent = "two-agent" // each role encodes the whole context with its own adapter
)

// Gradient-token filters (Config.GradTokens).
const (
	GradAll    = "all"
	GradReason = "reason"
	GradTool   = "tool"
)

// Gradient isolation modes (Config.Isolation).
const (
	// IsolationDefault is one backward pass over the whole loss: every
	// adapter gets the gradient of every token's loss that reaches it,
	// including, under dual, later tokens of the other role attending to
	// the positions it computed.
	IsolationDefault = "default"
	// IsolationStrict gives each adapter only the gradient of its own
	// role's token losses: one train.onnx pass per role, with the token
	// weights of the other roles' positions zeroed, keeping only that
	// role's adapter gradients (a train pass per role: about twice the
	// train time with two roles).
	IsolationStrict = "strict"
)

// Loss aggregation modes (Config.LossAgg).
const (
	AggTokenMean        = "token-mean"          // 1/Σmask over the mini-batch
	AggSeqMeanTokenMean = "seq-mean-token-mean" // mean over sequences of each one's token mean
)

// Config holds every setting of a run. The YAML keys are the field tags;
// the CLI flags carry the same names with dashes.
type Config struct {
	// Steps is the number of GRPO steps (rollout batches).
	Steps int `yaml:"steps"`
	// Prompts per step; each is rolled out Group times.
	Prompts int `yaml:"prompts"`
	Group   int `yaml:"group"`
	// MiniBatch is the number of rollouts per optimizer update (0: all the
	// step's rollouts, one update per step); MicroBatch the rollouts per
	// train.onnx call.
	MiniBatch  int `yaml:"mini_batch"`
	MicroBatch int `yaml:"micro_batch"`

	Variant    string `yaml:"variant"`
	GradTokens string `yaml:"grad_tokens"`
	// Isolation is IsolationDefault or IsolationStrict.
	Isolation string `yaml:"isolation"`
	LossAgg   string `yaml:"loss_agg"`

	ClipLow  float64 `yaml:"clip_low"`
	ClipHigh float64 `yaml:"clip_high"`
	KLCoef   float64 `yaml:"kl_coef"`
	// EntropyCoeff weighs the entropy bonus: loss −= entropy_coeff·Σ w·H
	// (veRL's entropy_coeff, whose default 0.001 Search-R1 keeps).
	EntropyCoeff float64 `yaml:"entropy_coeff"`

	LR          float64 `yaml:"lr"`
	WarmupRatio float64 `yaml:"warmup_ratio"` // of the optimizer updates, linear from 0
	Beta1       float64 `yaml:"beta1"`
	Beta2       float64 `yaml:"beta2"`
	Eps         float64 `yaml:"eps"`
	WeightDecay float64 `yaml:"weight_decay"`
	MaxGradNorm float64 `yaml:"max_grad_norm"`

	// Sampling and the agent loop (passed to the Roller).
	Temperature    float64 `yaml:"temperature"`
	TopP           float64 `yaml:"top_p"`
	MaxTurns       int     `yaml:"max_turns"`
	MaxTurnTokens  int     `yaml:"max_turn_tokens"`
	MaxObsTokens   int     `yaml:"max_obs_tokens"`
	TopK           int     `yaml:"topk"` // passages per search
	RetrieveTries  int     `yaml:"retrieve_tries"`
	RecomputeOldLP bool    `yaml:"recompute_old_logprobs"`

	Seed uint64 `yaml:"seed"`
	// CheckpointEvery writes a checkpoint every N steps (0: only at the end
	// and on a signal); KeepCheckpoints bounds how many are kept.
	CheckpointEvery int `yaml:"checkpoint_every"`
	KeepCheckpoints int `yaml:"keep_checkpoints"`
	// MaxNonFinite consecutive skipped updates stop the run.
	MaxNonFinite int `yaml:"max_nonfinite"`
	// Threads bounds ONNX Runtime's intra-op threads (0: its default).
	Threads int `yaml:"threads"`
	// LowMemory runs train.onnx and logprobs.onnx without ONNX Runtime's
	// memory arena: their activations are returned after each run instead
	// of each session keeping its high-water mark, at about twice the
	// reference and train time.
	LowMemory bool `yaml:"low_memory"`
}

// DefaultConfig returns settings a 2-core CPU runs with the demo model
// (tiny Qwen2 with the 151,936-token vocabulary: about 4 GiB and under a
// minute a step): Search-R1's algorithm (G = 5, clip 0.2, k3 KL 0.001,
// temperature 1, top-p 0.95, top-3 passages, warmup 0.285) on 2 prompts a
// step, 2 search turns of 64 tokens, observations cut at 128 tokens, one
// rollout per train.onnx call. SearchR1Config is the paper's scale.
func DefaultConfig() Config {
	return Config{
		Steps: 20, Prompts: 2, Group: 5, MiniBatch: 0, MicroBatch: 1,
		Variant: VariantDual, GradTokens: GradAll, Isolation: IsolationDefault, LossAgg: AggTokenMean,
		ClipLow: 0.2, ClipHigh: 0.2, KLCoef: 0.001, EntropyCoeff: 0.001,
		LR: 2e-5, WarmupRatio: 0.285, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, MaxGradNorm: 1,
		Temperature: 1, TopP: 0.95, MaxTurns: 2, MaxTurnTokens: 64, MaxObsTokens: 128, TopK: 3, RetrieveTries: 3,
		Seed: 1, CheckpointEvery: 5, KeepCheckpoints: 2, MaxNonFinite: 3,
	}
}

// SearchR1Config returns Search-R1's GRPO settings (its train_grpo.sh and
// veRL's ppo_trainer.yaml): 512 prompts × G 5 a step, 256 rollouts per
// optimizer update, 1005 steps, 4 search turns of 500 tokens, observations
// of 500, with a LoRA learning rate in veRL's recommended range (Search-R1
// fine-tunes every weight at 1e-6). micro_batch stays a memory knob:
// Search-R1's 64 sequences are spread over 8 GPUs.
func SearchR1Config() Config {
	c := DefaultConfig()
	c.Steps, c.Prompts, c.Group, c.MiniBatch, c.MicroBatch = 1005, 512, 5, 256, 4
	c.MaxTurns, c.MaxTurnTokens, c.MaxObsTokens = 4, 500, 500
	c.CheckpointEvery = 10
	return c
}

// Presets are the named starting points of `dartc train --preset`.
var Presets = map[string]func() Config{
	"cpu":       DefaultConfig,
	"search-r1": SearchR1Config,
}

// PresetNames lists the presets, sorted.
func PresetNames() []string {
	names := make([]string, 0, len(Presets))
	for n := range Presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Preset returns the named preset's settings.
func Preset(name string) (Config, error) {
	f, ok := Presets[name]
	if !ok {
		return Config{}, fmt.Errorf("grpo: preset %q: choose %s", name, strings.Join(PresetNames(), " or "))
	}
	return f(), nil
}

// LoadConfig reads a YAML file over the defaults. Unknown keys are errors,
// so a misspelt setting never silently falls back to its default.
func LoadConfig(path string) (Config, error) {
	return LoadConfigOver(DefaultConfig(), path)
}

// LoadConfigOver reads a YAML file over base (a preset).
func LoadConfigOver(base Config, path string) (Config, error) {
	c := base
	b, err := os.ReadFile(path)
	if err != nil {
		return c, fmt.Errorf("grpo: config: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	// An empty file decodes to io.EOF: the defaults.
	if err := dec.Decode(&c); err != nil && !errors.Is(err, io.EOF) {
		return c, fmt.Errorf("grpo: config %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("grpo: config %s: %w", path, err)
	}
	return c, nil
}

// maxRolloutsPerStep bounds Prompts × Group (Search-R1 makes 512 × 5).
const maxRolloutsPerStep = 1 << 20

// RolloutsPerStep is Prompts × Group.
func (c *Config) RolloutsPerStep() int { return c.Prompts * c.Group }

// MiniBatchSize resolves MiniBatch = 0 to every rollout of a step.
func (c *Config) MiniBatchSize() int {
	if c.MiniBatch <= 0 || c.MiniBatch > c.RolloutsPerStep() {
		return c.RolloutsPerStep()
	}
	return c.MiniBatch
}

// UpdatesPerStep is the number of optimizer updates one step makes.
func (c *Config) UpdatesPerStep() int {
	m := c.MiniBatchSize()
	return (c.RolloutsPerStep() + m - 1) / m
}

// LRAt is the learning rate of the 1-based optimizer update t: linear
// warmup from lr/W to lr over the first W = round(WarmupRatio × all
// updates) updates, then constant (Search-R1's schedule).
func (c *Config) LRAt(t int) float64 {
	w := int(math.Round(c.WarmupRatio * float64(c.Steps*c.UpdatesPerStep())))
	if w <= 0 || t >= w {
		return c.LR
	}
	return c.LR * float64(t) / float64(w)
}

// Validate reports the first bad setting, naming its key.
func (c *Config) Validate() error {
	type rule struct {
		bad bool
		msg string
	}
	rules := []rule{
		{c.Steps < 1, fmt.Sprintf("steps %d: must be ≥ 1", c.Steps)},
		{c.Prompts < 1, fmt.Sprintf("prompts %d: must be ≥ 1", c.Prompts)},
		{c.Group < 1, fmt.Sprintf("group %d: must be ≥ 1 (1 makes every advantage 0)", c.Group)},
		{c.Prompts >= 1 && c.Group >= 1 && c.Prompts > maxRolloutsPerStep/c.Group,
			fmt.Sprintf("prompts %d × group %d: more than %d rollouts a step", c.Prompts, c.Group, maxRolloutsPerStep)},
		{c.MiniBatch < 0, fmt.Sprintf("mini_batch %d: must be ≥ 0 (0: all rollouts of a step)", c.MiniBatch)},
		{c.MicroBatch < 1, fmt.Sprintf("micro_batch %d: must be ≥ 1", c.MicroBatch)},
		{c.Variant != VariantDual && c.Variant != VariantSingle && c.Variant != VariantTwoAgent,
			fmt.Sprintf("variant %q: choose dual, single or two-agent", c.Variant)},
		{c.GradTokens != GradAll && c.GradTokens != GradReason && c.GradTokens != GradTool,
			fmt.Sprintf("grad_tokens %q: choose all, reason or tool", c.GradTokens)},
		{c.Isolation != IsolationDefault && c.Isolation != IsolationStrict,
			fmt.Sprintf("isolation %q: choose default or strict", c.Isolation)},
		{c.Isolation == IsolationStrict && c.Variant == VariantSingle,
			"isolation strict needs an adapter per role (variant dual or two-agent); variant single trains one adapter"},
		{c.LossAgg != AggTokenMean && c.LossAgg != AggSeqMeanTokenMean,
			fmt.Sprintf("loss_agg %q: choose token-mean or seq-mean-token-mean", c.LossAgg)},
		{!isFinite(c.ClipLow) || c.ClipLow < 0 || c.ClipLow >= 1, fmt.Sprintf("clip_low %v: must be in [0, 1)", c.ClipLow)},
		{!isFinite(c.ClipHigh) || c.ClipHigh < 0, fmt.Sprintf("clip_high %v: must be ≥ 0", c.ClipHigh)},
		{!isFinite(c.KLCoef) || c.KLCoef < 0, fmt.Sprintf("kl_coef %v: must be ≥ 0", c.KLCoef)},
		{!isFinite(c.EntropyCoeff) || c.EntropyCoeff < 0, fmt.Sprintf("entropy_coeff %v: must be ≥ 0", c.EntropyCoeff)},
		{!isFinite(c.LR) || c.LR <= 0, fmt.Sprintf("lr %v: must be > 0", c.LR)},
		{!isFinite(c.WarmupRatio) || c.WarmupRatio < 0 || c.WarmupRatio > 1, fmt.Sprintf("warmup_ratio %v: must be in [0, 1]", c.WarmupRatio)},
		{!isFinite(c.Beta1) || c.Beta1 < 0 || c.Beta1 >= 1, fmt.Sprintf("beta1 %v: must be in [0, 1)", c.Beta1)},
		{!isFinite(c.Beta2) || c.Beta2 < 0 || c.Beta2 >= 1, fmt.Sprintf("beta2 %v: must be in [0, 1)", c.Beta2)},
		{!isFinite(c.Eps) || c.Eps <= 0, fmt.Sprintf("eps %v: must be > 0", c.Eps)},
		{!isFinite(c.WeightDecay) || c.WeightDecay < 0, fmt.Sprintf("weight_decay %v: must be ≥ 0", c.WeightDecay)},
		{!isFinite(c.MaxGradNorm), fmt.Sprintf("max_grad_norm %v: must be finite (≤ 0 disables clipping)", c.MaxGradNorm)},
		{!isFinite(c.Temperature) || c.Temperature < 0, fmt.Sprintf("temperature %v: must be ≥ 0", c.Temperature)},
		{!isFinite(c.TopP) || c.TopP < 0 || c.TopP > 1, fmt.Sprintf("top_p %v: must be in [0, 1]", c.TopP)},
		{c.MaxTurns < 1, fmt.Sprintf("max_turns %d: must be ≥ 1", c.MaxTurns)},
		{c.MaxTurnTokens < 1, fmt.Sprintf("max_turn_tokens %d: must be ≥ 1", c.MaxTurnTokens)},
		{c.MaxObsTokens < 1, fmt.Sprintf("max_obs_tokens %d: must be ≥ 1", c.MaxObsTokens)},
		{c.TopK < 1, fmt.Sprintf("topk %d: must be ≥ 1", c.TopK)},
		{c.RetrieveTries < 1, fmt.Sprintf("retrieve_tries %d: must be ≥ 1", c.RetrieveTries)},
		{c.CheckpointEvery < 0, fmt.Sprintf("checkpoint_every %d: must be ≥ 0", c.CheckpointEvery)},
		{c.KeepCheckpoints < 1, fmt.Sprintf("keep_checkpoints %d: must be ≥ 1", c.KeepCheckpoints)},
		{c.MaxNonFinite < 1, fmt.Sprintf("max_nonfinite %d: must be ≥ 1", c.MaxNonFinite)},
		{c.Threads < 0, fmt.Sprintf("threads %d: must be ≥ 0", c.Threads)},
	}
	for _, r := range rules {
		if r.bad {
			return fmt.Errorf("grpo: %s", r.msg)
		}
	}
	return nil
}
