package grpo

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"time"

	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/eval"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/safetensors"
	"github.com/dartc/dartc/trajectory"
)

// ErrNonFinite is returned when Config.MaxNonFinite updates in a row had a
// non-finite loss or gradient.
var ErrNonFinite = errors.New("grpo: non-finite loss or gradient")

// Options configure a Trainer.
type Options struct {
	// Model is a directory written by `dartc compile` (with train.onnx).
	Model string
	// Run is the output directory: metrics.jsonl, checkpoints/, config.yaml.
	Run    string
	Config Config
	// Data are the training prompts, read in a seeded order per epoch.
	Data   []eval.Example
	Roller Roller
	// Reward scores rollouts (nil: EMReward).
	Reward Reward
	// Resume continues from the newest checkpoint in Run. The settings and
	// the fingerprint (model, initial adapters, data) must match the run's
	// config.yaml and run.json, except the keys Override names (setting
	// keys, or "data"); those are then rewritten.
	Resume   bool
	Override []string
	Device   string
	// HostTensors runs the step on host tensors through onnxruntime_go,
	// copying every adapter, gradient and moment into ONNX Runtime and back
	// at every call: the path before device residency, kept as the
	// reference that the resident path is tested against (bit for bit).
	HostTensors bool
	Log         *slog.Logger
	// OnStep is called after every step with its metrics.
	OnStep func(Metrics)
	// OnPhase, when set, is called as each phase of a step starts:
	// "rollout", "reference", "train".
	OnPhase func(phase string)
}

// State is what a checkpoint restores besides the tensors. Every random
// choice of a step is drawn from streams keyed by (Seed, Step) or
// (Seed, Epoch), so these counters are the complete RNG state.
type State struct {
	Step   int    `json:"step"`   // completed GRPO steps
	Update int    `json:"update"` // completed optimizer updates (AdamW's t)
	Epoch  int    `json:"epoch"`  // data cursor: epoch and index into its order
	Cursor int    `json:"cursor"`
	Seed   uint64 `json:"seed"`
	// NonFiniteRun counts the consecutive skipped updates; Skipped all of them.
	NonFiniteRun int `json:"nonfinite_run"`
	Skipped      int `json:"skipped"`
	// LossScale is the dynamic loss scale of a float16 train graph (0 for
	// other graphs) and ScaleGood the finite updates since it last changed.
	LossScale float64 `json:"loss_scale,omitempty"`
	ScaleGood int     `json:"loss_scale_good,omitempty"`
}

// Dynamic loss scaling of float16 train graphs, as PyTorch's GradScaler
// does it: start at 2¹⁶, halve on a non-finite gradient (the update is
// skipped, and does not count toward max_nonfinite while the scale can
// still drop), double after scaleGrowth finite updates in a row.
const (
	initialLossScale = 1 << 16
	maxLossScale     = 1 << 24
	scaleGrowth      = 2000
)

// Trainer runs GRPO steps over one compiled model.
type Trainer struct {
	opts   Options
	cfg    Config
	man    *manifest.Manifest
	log    *slog.Logger
	dt     runtime.DType  // adapter and head dtype
	names  []string       // adapter inputs in manifest order
	roleOf map[string]int // adapter input → index of its role
	roles  int
	// entropyInput: train.onnx takes entropy_coeff (graphs compiled before
	// it existed do not).
	entropyInput bool
	// scaled: train.onnx takes a loss scale (float16 graphs; State.LossScale).
	scaled bool

	train, adamw, logprobs *runtime.Session
	// res keeps adapters, moments and gradient sums on the execution
	// device; nil with Options.HostTensors. With res, params, m and v below
	// are nil: the device holds the only copy.
	res *resident

	params, m, v map[string]*runtime.Tensor
	zeros        map[string]*runtime.Tensor // the adapters switched off: the base model
	meta         map[string]string          // adapters.safetensors metadata, carried into checkpoints
	state        State
	order        []int // data order of state.Epoch
	lastCkpt     int
}

// New opens the compiled graphs and the initial (or, with Resume, the
// checkpointed) adapters.
func New(opts Options) (*Trainer, error) {
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Roller == nil {
		return nil, errors.New("grpo: no roller: the trainer needs a rollout source")
	}
	if len(opts.Data) == 0 {
		return nil, errors.New("grpo: no training examples")
	}
	if opts.Reward == nil {
		opts.Reward = EMReward
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	man, err := manifest.Read(opts.Model)
	if err != nil {
		return nil, fmt.Errorf("grpo: %w", err)
	}
	tr := &Trainer{opts: opts, cfg: cfg, man: man, log: opts.Log, names: man.AdapterNames(), roles: len(man.LoRA.Roles), lastCkpt: -1,
		roleOf: map[string]int{}}
	for _, t := range man.LoRA.Targets {
		for r, role := range man.LoRA.Roles {
			tr.roleOf[t.A[role]], tr.roleOf[t.B[role]] = r, r
		}
	}
	if cfg.Variant == VariantTwoAgent || cfg.GradTokens != GradAll {
		if tr.roles != 2 || man.LoRA.Roles[RoleReason] != "reason" || man.LoRA.Roles[RoleTool] != "tool" {
			return nil, fmt.Errorf("grpo: variant %s / grad_tokens %s need the roles reason, tool; %s has %v", cfg.Variant, cfg.GradTokens, opts.Model, man.LoRA.Roles)
		}
	}
	for _, g := range []string{manifest.GraphTrain, manifest.GraphAdamW, manifest.GraphLogprobs} {
		if man.Graphs[g] == nil {
			return nil, fmt.Errorf("grpo: %s has no %s graph; compile it with every graph (no --graphs)", opts.Model, g)
		}
	}
	tw := man.Graphs[manifest.GraphTrain].Input("token_weights")
	if tw == nil {
		return nil, fmt.Errorf("grpo: %s/train.onnx has no token_weights input; recompile it", opts.Model)
	}
	if tr.dt, err = runtime.ParseDType(tw.DType); err != nil {
		return nil, fmt.Errorf("grpo: %w", err)
	}
	tr.entropyInput = man.Graphs[manifest.GraphTrain].Input("entropy_coeff") != nil
	tr.scaled = man.Graphs[manifest.GraphTrain].Input("loss_scale") != nil
	if !tr.entropyInput && cfg.EntropyCoeff != 0 {
		return nil, fmt.Errorf("grpo: entropy_coeff %v: %s/train.onnx has no entropy_coeff input; recompile the model with this dartc", cfg.EntropyCoeff, opts.Model)
	}
	open := func(g string) (*runtime.Session, error) {
		spec := man.Graphs[g]
		so, err := runtime.ForGraph(spec, runtime.Options{Device: opts.Device, IntraOpThreads: cfg.Threads,
			NoMemArena: cfg.LowMemory && g != manifest.GraphAdamW})
		if err != nil {
			return nil, err
		}
		return runtime.NewSession(filepath.Join(opts.Model, spec.File), so)
	}
	if opts.HostTensors {
		if tr.train, err = open(manifest.GraphTrain); err != nil {
			return nil, err
		}
		if tr.adamw, err = open(manifest.GraphAdamW); err != nil {
			tr.Close()
			return nil, err
		}
		if tr.logprobs, err = open(manifest.GraphLogprobs); err != nil {
			tr.Close()
			return nil, err
		}
	}
	if err := tr.initState(); err != nil {
		tr.Close()
		return nil, err
	}
	if !opts.HostTensors {
		if tr.res, err = openResident(tr, tr.params, tr.m, tr.v); err != nil {
			tr.Close()
			return nil, err
		}
		tr.params, tr.m, tr.v, tr.zeros = nil, nil, nil, nil
	}
	return tr, nil
}

func (tr *Trainer) initState() error {
	path := filepath.Join(tr.opts.Model, tr.man.AdaptersFile)
	f, err := safetensors.Read(path)
	if err != nil {
		return fmt.Errorf("grpo: initial adapters: %w", err)
	}
	tr.meta = f.Metadata
	tr.params, err = tr.readAdapters(f, "")
	if err != nil {
		return fmt.Errorf("grpo: %s: %w", path, err)
	}
	tr.m, tr.v, tr.zeros = map[string]*runtime.Tensor{}, map[string]*runtime.Tensor{}, map[string]*runtime.Tensor{}
	for _, n := range tr.names {
		shape := tr.params[n].Shape()
		tr.m[n] = runtime.NewTensor(tr.dt, shape...)
		tr.v[n] = runtime.NewTensor(tr.dt, shape...)
		tr.zeros[n] = runtime.NewTensor(tr.dt, shape...)
	}
	tr.state = State{Seed: tr.cfg.Seed}
	if tr.cfg.Variant == VariantSingle {
		if err := tr.tieSingle(); err != nil {
			return err
		}
	}
	if tr.opts.Resume {
		ck, err := LatestCheckpoint(tr.opts.Run)
		if err != nil {
			return err
		}
		commit, err := tr.checkResume()
		if err != nil {
			return err
		}
		if err := tr.load(ck); err != nil {
			return err
		}
		if err := commit(); err != nil {
			return err
		}
		tr.lastCkpt = tr.state.Step
		if err := truncateMetrics(filepath.Join(tr.opts.Run, MetricsFile), tr.state.Step); err != nil {
			return err
		}
		tr.log.Info("resumed", "checkpoint", ck, "step", tr.state.Step)
	} else if err := tr.startRun(); err != nil {
		return err
	}
	if tr.scaled && tr.state.LossScale == 0 {
		tr.state.LossScale = initialLossScale
	}
	tr.order = epochOrder(tr.state.Seed, tr.state.Epoch, len(tr.opts.Data))
	return nil
}

// readAdapters takes every adapter tensor (named prefix+name) from f in the
// head dtype, checking the shapes the train graph declares.
func (tr *Trainer) readAdapters(f *safetensors.File, prefix string) (map[string]*runtime.Tensor, error) {
	spec := tr.man.Graphs[manifest.GraphTrain]
	out := map[string]*runtime.Tensor{}
	for _, n := range tr.names {
		st, err := f.Get(prefix + n)
		if err != nil {
			return nil, err
		}
		t, err := fromSafetensors(st, tr.dt)
		if err != nil {
			return nil, err
		}
		if in := spec.Input(n); in != nil {
			for i, d := range in.Dims {
				if d.Param == "" && (i >= len(st.Shape) || st.Shape[i] != d.Value) {
					return nil, fmt.Errorf("adapter %s is %v, the graph wants %v", n, st.Shape, in.Dims)
				}
			}
		}
		out[n] = t
	}
	return out, nil
}

// Close releases the sessions.
func (tr *Trainer) Close() error {
	var errs []error
	if tr.res != nil {
		errs = append(errs, tr.res.close())
		tr.res = nil
	}
	for _, s := range []*runtime.Session{tr.train, tr.adamw, tr.logprobs} {
		if s != nil {
			errs = append(errs, s.Destroy())
		}
	}
	return errors.Join(errs...)
}

// State returns the trainer's counters.
func (tr *Trainer) State() State { return tr.state }

// Adapters returns copies of the current adapters, read back from the
// device when they live there (an error then means the read-back failed).
func (tr *Trainer) Adapters() (map[string]*runtime.Tensor, error) {
	params, _, _, err := tr.hostState()
	if err != nil {
		return nil, fmt.Errorf("read the adapters back: %w", err)
	}
	out := map[string]*runtime.Tensor{}
	for n, t := range params {
		out[n] = cloneTensor(t)
	}
	return out, nil
}

// hostState returns the adapters and moments in Go memory: the trainer's
// own maps, or copies read back from the device.
func (tr *Trainer) hostState() (params, m, v map[string]*runtime.Tensor, err error) {
	if tr.res == nil {
		return tr.params, tr.m, tr.v, nil
	}
	if params, err = tr.res.download(tr.res.params); err != nil {
		return nil, nil, nil, err
	}
	if m, err = tr.res.download(tr.res.m); err != nil {
		return nil, nil, nil, err
	}
	if v, err = tr.res.download(tr.res.v); err != nil {
		return nil, nil, nil, err
	}
	return params, m, v, nil
}

// tieSingle makes every role's slot a copy of role 0's: the single-LoRA
// baseline is the dual graph with the same tensors in both slots, so the
// sampling policy does not depend on the roles the agent loop assigns.
func (tr *Trainer) tieSingle() error {
	if tr.res != nil {
		return tr.res.tie(tr.tiePairs())
	}
	for _, p := range tr.tiePairs() {
		copy(tr.params[p[1]].Bytes(), tr.params[p[0]].Bytes())
	}
	return nil
}

// tiePairs lists (role 0's adapter, another role's) for every target.
func (tr *Trainer) tiePairs() [][2]string {
	var out [][2]string
	r0 := tr.man.LoRA.Roles[0]
	for _, t := range tr.man.LoRA.Targets {
		for _, r := range tr.man.LoRA.Roles[1:] {
			out = append(out, [2]string{t.A[r0], t.A[r]}, [2]string{t.B[r0], t.B[r]})
		}
	}
	return out
}

// epochOrder is the data order of one epoch: a permutation drawn from
// PCG(seed, epoch).
func epochOrder(seed uint64, epoch, n int) []int {
	rng := rand.New(rand.NewPCG(seed, uint64(epoch)^0x6a09e667f3bcc908))
	return rng.Perm(n)
}

// rolloutSeed is the seed of step's rollouts.
func rolloutSeed(seed uint64, step int) uint64 {
	h := fnv.New64a()
	h.Write([]byte(strconv.FormatUint(seed, 10) + "/rollout/" + strconv.Itoa(step)))
	return h.Sum64()
}

// nextExamples takes the step's prompts from the data cursor, advancing st
// and returning the data order of st's epoch.
func (tr *Trainer) nextExamples(st *State) ([]eval.Example, []int) {
	var ex []eval.Example
	order := tr.order
	for len(ex) < tr.cfg.Prompts {
		if st.Cursor >= len(order) {
			st.Epoch++
			st.Cursor = 0
			order = epochOrder(st.Seed, st.Epoch, len(tr.opts.Data))
		}
		ex = append(ex, tr.opts.Data[order[st.Cursor]])
		st.Cursor++
	}
	return ex, order
}

// Run trains until Config.Steps, writing metrics every step and checkpoints
// every CheckpointEvery steps, at the end, and when ctx is cancelled (a
// signal): then the last completed step is saved and ctx's error returned.
// On any other error nothing is written: the last checkpoint stays the
// last good state.
func (tr *Trainer) Run(ctx context.Context) error {
	for tr.state.Step < tr.cfg.Steps {
		met, err := tr.Step(ctx)
		if err != nil {
			if ctx.Err() != nil {
				if cerr := tr.checkpointIfNew(); cerr != nil {
					return errors.Join(err, cerr)
				}
			}
			return err
		}
		if err := appendMetrics(filepath.Join(tr.opts.Run, MetricsFile), met); err != nil {
			return err
		}
		if tr.opts.OnStep != nil {
			tr.opts.OnStep(met)
		}
		if tr.state.NonFiniteRun >= tr.cfg.MaxNonFinite {
			last := "none was written"
			if ck, err := LatestCheckpoint(tr.opts.Run); err == nil {
				last = ck
			}
			return fmt.Errorf("%w: %d updates in a row were skipped (step %d); the run stopped with its last good checkpoint intact (%s); lower lr or max_grad_norm, or look for NaN in the rollouts' log-probs and rewards",
				ErrNonFinite, tr.state.NonFiniteRun, tr.state.Step, last)
		}
		if every := tr.cfg.CheckpointEvery; (every > 0 && tr.state.Step%every == 0) || tr.state.Step == tr.cfg.Steps {
			if err := tr.checkpointIfNew(); err != nil {
				return err
			}
		}
		if err := ctx.Err(); err != nil {
			if cerr := tr.checkpointIfNew(); cerr != nil {
				return errors.Join(err, cerr)
			}
			return fmt.Errorf("grpo: stopped after step %d: %w", tr.state.Step, err)
		}
	}
	return nil
}

func (tr *Trainer) checkpointIfNew() error {
	if tr.state.Step == tr.lastCkpt {
		return nil
	}
	path, err := tr.Checkpoint()
	if err != nil {
		return err
	}
	tr.log.Info("checkpoint", "path", path, "step", tr.state.Step)
	return nil
}

// Step runs one GRPO step: rollouts, rewards, advantages, reference
// log-probs, then per mini-batch the micro-batches through train.onnx and
// one adamw.onnx update. ctx is honoured until the first update; after
// that the step runs to its end so that the state stays consistent.
func (tr *Trainer) Step(ctx context.Context) (Metrics, error) {
	cfg := &tr.cfg
	st := tr.state
	met := Metrics{Step: st.Step + 1}
	start := time.Now()
	examples, order := tr.nextExamples(&st)

	tr.phase("rollout")
	t0 := time.Now()
	trajs, err := tr.rollout(ctx, examples, rolloutSeed(st.Seed, st.Step))
	if err != nil {
		return met, fmt.Errorf("grpo: step %d rollout: %w", st.Step+1, err)
	}
	met.RolloutSeconds = time.Since(t0).Seconds()
	if err := checkRollouts(trajs, len(examples), cfg.Group); err != nil {
		return met, err
	}
	rewards := make([]float64, len(trajs))
	for i, t := range trajs {
		rewards[i] = tr.opts.Reward(t)
	}
	adv := GroupAdvantages(rewards, cfg.Group)
	met.addRollouts(trajs, rewards)
	if err := ctx.Err(); err != nil {
		return met, err
	}

	tr.phase("reference")
	t0 = time.Now()
	ref := make([][]float64, len(trajs))
	if cfg.KLCoef > 0 {
		if ref, err = tr.forwardLogprobs(trajs, true, nil); err != nil {
			return met, err
		}
	}
	old := make([][]float64, len(trajs))
	for i, t := range trajs {
		old[i] = t.LogProbs
	}
	if cfg.RecomputeOldLP || cfg.Variant == VariantTwoAgent {
		if old, err = tr.currentLogprobs(trajs); err != nil {
			return met, err
		}
	}
	met.ReferenceSeconds = time.Since(t0).Seconds()
	if err := ctx.Err(); err != nil {
		return met, err
	}

	tr.phase("train")
	mb := cfg.MiniBatchSize()
	var acc tokenStats
	for lo := 0; lo < len(trajs); lo += mb {
		hi := min(lo+mb, len(trajs))
		if err := tr.update(trajs[lo:hi], adv[lo:hi], old[lo:hi], ref[lo:hi], &st, &met, &acc); err != nil {
			return met, err
		}
		acc.firstDone = true
	}
	acc.into(&met, cfg.KLCoef > 0)
	met.Loss /= float64(cfg.UpdatesPerStep())
	st.Step++
	tr.state, tr.order = st, order
	met.LR = cfg.LRAt(max(st.Update, 1))
	met.Skipped = st.Skipped
	met.StepSeconds = time.Since(start).Seconds()
	if met.RolloutSeconds > 0 {
		met.TokensPerSecond = float64(met.generated) / met.RolloutSeconds
	}
	if met.TrainSeconds > 0 {
		met.TrainTokensPerSecond = float64(met.trained) / met.TrainSeconds
	}
	return met, nil
}

// rollout asks the roller for the step's trajectories with the current
// adapters: in place on the device for a ResidentRoller, else as Go
// tensors (with resident tensors, one counted read-back of the adapters
// per step).
func (tr *Trainer) rollout(ctx context.Context, examples []eval.Example, seed uint64) ([]*trajectory.Trajectory, error) {
	if tr.res != nil {
		if rr, ok := tr.opts.Roller.(ResidentRoller); ok {
			return rr.RolloutResident(ctx, examples, tr.cfg.Group, tr.res.params, seed)
		}
		params, err := tr.res.download(tr.res.params)
		if err != nil {
			return nil, err
		}
		return tr.opts.Roller.Rollout(ctx, examples, tr.cfg.Group, params, seed)
	}
	return tr.opts.Roller.Rollout(ctx, examples, tr.cfg.Group, tr.params, seed)
}

func (tr *Trainer) phase(name string) {
	if tr.opts.OnPhase != nil {
		tr.opts.OnPhase(name)
	}
}

// update trains one mini-batch: accumulate gradients over its micro-batches,
// then one optimizer update unless the loss or a gradient is not finite.
func (tr *Trainer) update(batch []*trajectory.Trajectory, adv []float64, old, ref [][]float64, st *State, met *Metrics, acc *tokenStats) error {
	cfg := &tr.cfg
	w, err := TokenWeights(batch, cfg.LossAgg, cfg.GradTokens)
	if err != nil {
		return err
	}
	t0 := time.Now()
	grads, loss, finite, err := tr.accumulate(batch, w, adv, old, ref, st.LossScale, met, acc)
	if err != nil {
		return err
	}
	met.TrainSeconds += time.Since(t0).Seconds()
	met.Loss += loss
	// Only gradients that overflowed under a finite loss are the scale's
	// doing; a non-finite loss is not (it is computed unscaled).
	if !finite && isFinite(loss) && tr.lowerScale(st, met) {
		return nil
	}
	if !finite {
		st.NonFiniteRun++
		st.Skipped++
		met.NonFinite = true
		tr.log.Warn("skipped an update: non-finite loss or gradient", "step", st.Step+1, "loss", loss, "in_a_row", st.NonFiniteRun)
		return nil
	}
	t0 = time.Now()
	t := st.Update + 1
	in := map[string]*runtime.Tensor{
		"step": scalar(runtime.Float32, float64(t)), "lr": scalar(runtime.Float32, cfg.LRAt(t)),
		"beta1": scalar(runtime.Float32, cfg.Beta1), "beta2": scalar(runtime.Float32, cfg.Beta2),
		"eps": scalar(runtime.Float32, cfg.Eps), "weight_decay": scalar(runtime.Float32, cfg.WeightDecay),
		"max_grad_norm": scalar(runtime.Float32, cfg.MaxGradNorm),
	}
	// Finite gradients can still have a norm that overflows (Σ g² beyond
	// float32's range): the clip factor is then 0 and the moments and the
	// step count would move with nothing learned. Such an update is
	// skipped like a non-finite gradient: its results are not taken.
	// (The adapters' gradients are already divided by any loss scale: an
	// overflowing norm is a divergence, counted toward max_nonfinite.)
	skip := func(norm float64) {
		st.NonFiniteRun++
		st.Skipped++
		met.NonFinite = true
		tr.log.Warn("skipped an update: the gradient norm is not finite", "step", st.Step+1, "grad_norm", norm, "in_a_row", st.NonFiniteRun)
	}
	if tr.res != nil {
		norm, err := tr.res.adamwStep(in, isFinite)
		if err != nil {
			return err
		}
		met.GradNorm = norm
		if !isFinite(norm) {
			skip(norm)
			return nil
		}
	} else {
		for _, n := range tr.names {
			in[n], in["grad."+n], in["m."+n], in["v."+n] = tr.params[n], grads[n], tr.m[n], tr.v[n]
		}
		out, err := tr.adamw.Run(in)
		if err != nil {
			return fmt.Errorf("grpo: adamw.onnx: %w", err)
		}
		met.GradNorm = out["grad_norm"].Floats()[0]
		if !isFinite(met.GradNorm) {
			skip(met.GradNorm)
			return nil
		}
		for _, n := range tr.names {
			tr.params[n], tr.m[n], tr.v[n] = out["new."+n], out["new_m."+n], out["new_v."+n]
		}
	}
	st.NonFiniteRun = 0
	if cfg.Variant == VariantSingle {
		if err := tr.tieSingle(); err != nil {
			return err
		}
	}
	st.Update = t
	if tr.scaled {
		if st.ScaleGood++; st.ScaleGood >= scaleGrowth && st.LossScale < maxLossScale {
			st.LossScale *= 2
			st.ScaleGood = 0
		}
		met.LossScale = st.LossScale
	}
	met.OptimizerSeconds += time.Since(t0).Seconds()
	return nil
}

// lowerScale handles an update whose gradients overflowed under a loss
// scale that can still drop: it halves the scale and skips the update
// without counting it toward max_nonfinite. It reports whether it did.
func (tr *Trainer) lowerScale(st *State, met *Metrics) bool {
	if !tr.scaled || st.LossScale <= 1 {
		return false
	}
	st.LossScale /= 2
	st.ScaleGood = 0
	st.Skipped++
	met.NonFinite = true
	met.LossScale = st.LossScale
	tr.log.Info("float16 gradients overflowed: update skipped, loss scale halved", "step", st.Step+1, "loss_scale", st.LossScale)
	return true
}

// gradients runs the variant's train.onnx passes over one mini-batch in
// micro-batches and sums their gradients: for every adapter, the
// gradient of Σ w·ℓ over the passes that own it (all passes, or under
// strict isolation only the pass of the adapter's role). It returns the
// summed loss and whether loss and gradients were all finite. met and acc
// (nil in tests) collect the token statistics. With resident tensors the
// gradients are read back from the device (for tests and diagnostics).
func (tr *Trainer) gradients(batch []*trajectory.Trajectory, w [][]float64, adv []float64, old, ref [][]float64, met *Metrics, acc *tokenStats) (map[string]*runtime.Tensor, float64, bool, error) {
	grads, loss, finite, err := tr.accumulate(batch, w, adv, old, ref, tr.state.LossScale, met, acc)
	if err != nil || tr.res == nil {
		return grads, loss, finite, err
	}
	grads, err = tr.res.download(tr.res.grad)
	return grads, loss, finite, err
}

// accumulate is gradients leaving the sums where the step keeps them: in
// the returned host tensors, or with resident tensors on the device (the
// returned map is then nil). scale is the loss scale of a float16 train
// graph (unused by others).
func (tr *Trainer) accumulate(batch []*trajectory.Trajectory, w [][]float64, adv []float64, old, ref [][]float64, scale float64, met *Metrics, acc *tokenStats) (map[string]*runtime.Tensor, float64, bool, error) {
	cfg := &tr.cfg
	var grads map[string]*runtime.Tensor
	if tr.res != nil {
		if err := tr.res.zeroGrads(); err != nil {
			return nil, 0, false, err
		}
	} else {
		grads = map[string]*runtime.Tensor{}
		for _, n := range tr.names {
			grads[n] = runtime.NewTensor(tr.dt, tr.params[n].Shape()...)
		}
	}
	loss, finite := 0.0, true
	for lo := 0; lo < len(batch); lo += cfg.MicroBatch {
		hi := min(lo+cfg.MicroBatch, len(batch))
		for _, pass := range tr.passes() {
			mw := pass.weights(batch[lo:hi], w[lo:hi])
			if allZero(mw) {
				continue
			}
			in := tr.packSeqs(batch[lo:hi], pass.roles)
			S := tr.padLen(batch[lo:hi])
			in["token_weights"] = packFloats(tr.dt, mw, S)
			in["advantages"] = packFloats(tr.dt, broadcast(batch[lo:hi], adv[lo:hi]), S)
			in["old_logprobs"] = packFloats(tr.dt, pad(old[lo:hi], batch[lo:hi]), S)
			in["ref_logprobs"] = packFloats(tr.dt, pad(ref[lo:hi], batch[lo:hi]), S)
			in["clip_low"] = scalar(tr.dt, cfg.ClipLow)
			in["clip_high"] = scalar(tr.dt, cfg.ClipHigh)
			in["kl_coef"] = scalar(tr.dt, cfg.KLCoef)
			if tr.entropyInput {
				in["entropy_coeff"] = scalar(tr.dt, cfg.EntropyCoeff)
			}
			if tr.scaled {
				in["loss_scale"] = scalar(tr.dt, scale)
			}
			if met != nil {
				met.TrainPositions += in["input_ids"].Len()
				met.TrainCalls++
			}
			var out map[string]*runtime.Tensor
			if tr.res != nil {
				var ok bool
				var err error
				if out, ok, err = tr.res.trainPass(in, pass.grads); err != nil {
					return nil, 0, false, err
				}
				finite = finite && ok
			} else {
				for n, p := range tr.params {
					in[n] = p
				}
				var err error
				if out, err = tr.train.Run(in); err != nil {
					return nil, 0, false, fmt.Errorf("grpo: train.onnx: %w", err)
				}
				for _, n := range tr.names {
					if pass.grads >= 0 && tr.roleOf[n] != pass.grads {
						continue // strict isolation: another role's losses
					}
					g := out["grad."+n]
					if !allFinite(g) {
						finite = false
					}
					addInto(grads[n], g)
				}
			}
			l := out["loss"].Floats()[0]
			loss += l
			if math.IsNaN(l) || math.IsInf(l, 0) {
				finite = false
			}
			if acc != nil {
				acc.add(out, mw, batch[lo:hi])
			}
			if met != nil {
				met.trained += countMask(mw)
			}
		}
	}
	return grads, loss, finite, nil
}

// trainPass is one train.onnx call layout over a micro-batch: the role of
// every position, which token weights it carries, and whose gradients it
// gives (grads: a role index, or -1 for every adapter).
type trainPass struct {
	roles   func(tr *trajectory.Trajectory, t int) int64
	weights func(batch []*trajectory.Trajectory, w [][]float64) [][]float64
	grads   int
}

func keepAll(_ []*trajectory.Trajectory, w [][]float64) [][]float64 { return w }

// passes returns the train.onnx calls per micro-batch of the variant:
// dual trains each position with its own role (one pass; under strict
// isolation one pass per role, each with the weights of that role's
// positions and giving only that role's gradients); single feeds role 0
// everywhere; two-agent makes one pass per role with every position
// encoded by that role's adapter and the weights of that role's positions.
func (tr *Trainer) passes() []trainPass {
	own := func(tj *trajectory.Trajectory, t int) int64 { return tj.Roles[t] }
	switch {
	case tr.cfg.Variant == VariantSingle:
		return []trainPass{{roles: func(*trajectory.Trajectory, int) int64 { return 0 }, weights: keepAll, grads: -1}}
	case tr.cfg.Variant == VariantTwoAgent, tr.cfg.Isolation == IsolationStrict:
		var ps []trainPass
		for r := range tr.roles {
			role := int64(r)
			p := trainPass{roles: own, weights: roleWeights(role), grads: r}
			if tr.cfg.Variant == VariantTwoAgent {
				p.roles = func(*trajectory.Trajectory, int) int64 { return role }
			}
			ps = append(ps, p)
		}
		return ps
	}
	return []trainPass{{roles: own, weights: keepAll, grads: -1}}
}

// roleWeights keeps the token weights of role's positions and zeroes the
// others.
func roleWeights(role int64) func(batch []*trajectory.Trajectory, w [][]float64) [][]float64 {
	return func(batch []*trajectory.Trajectory, w [][]float64) [][]float64 {
		out := make([][]float64, len(w))
		for i, tj := range batch {
			out[i] = make([]float64, len(w[i]))
			for t, v := range w[i] {
				if tj.Roles[t] == role {
					out[i][t] = v
				}
			}
		}
		return out
	}
}

// forwardLogprobs runs logprobs.onnx over the trajectories with the
// current adapters (base: zeros, the base model) and roles (nil: the
// trajectories' own), in micro-batches.
func (tr *Trainer) forwardLogprobs(trajs []*trajectory.Trajectory, base bool, roles func(*trajectory.Trajectory, int) int64) ([][]float64, error) {
	if roles == nil {
		roles = func(tj *trajectory.Trajectory, t int) int64 { return tj.Roles[t] }
	}
	out := make([][]float64, len(trajs))
	for lo := 0; lo < len(trajs); lo += tr.cfg.MicroBatch {
		hi := min(lo+tr.cfg.MicroBatch, len(trajs))
		in := tr.packSeqs(trajs[lo:hi], roles)
		var lp *runtime.Tensor
		if tr.res != nil {
			var err error
			if lp, err = tr.res.logprobsRun(in, base); err != nil {
				return nil, err
			}
		} else {
			adapters := tr.params
			if base {
				adapters = tr.zeros
			}
			for n, p := range adapters {
				in[n] = p
			}
			res, err := tr.logprobs.Run(in, "logprobs")
			if err != nil {
				return nil, fmt.Errorf("grpo: logprobs.onnx: %w", err)
			}
			lp = res["logprobs"]
		}
		S := int(lp.Shape()[1])
		for i := lo; i < hi; i++ {
			out[i] = lp.FloatsAt(nil, (i-lo)*S, len(trajs[i].Tokens))
		}
	}
	return out, nil
}

// currentLogprobs recomputes the old log-probs with the current adapters
// under the variant's layout: for two-agent, each position's log-prob is
// taken from the pass of its own role.
func (tr *Trainer) currentLogprobs(trajs []*trajectory.Trajectory) ([][]float64, error) {
	ps := tr.passes()
	if tr.cfg.Variant != VariantTwoAgent {
		return tr.forwardLogprobs(trajs, false, ps[0].roles) // every pass feeds the same roles
	}
	out := make([][]float64, len(trajs))
	for i, tj := range trajs {
		out[i] = make([]float64, len(tj.Tokens))
	}
	for r, p := range ps {
		lp, err := tr.forwardLogprobs(trajs, false, p.roles)
		if err != nil {
			return nil, err
		}
		for i, tj := range trajs {
			for t := range tj.Tokens {
				if tj.Roles[t] == int64(r) && tj.Policy[t] {
					out[i][t] = lp[i][t]
				}
			}
		}
	}
	return out, nil
}

// isFinite reports whether x is neither NaN nor ±Inf.
func isFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
