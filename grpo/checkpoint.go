package grpo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/dartc/dartc/internal/atomicfile"

	"github.com/dartc/dartc/safetensors"
)

// Names inside a run directory and a checkpoint.
const (
	CheckpointsDir = "checkpoints"
	AdaptersFile   = "adapters.safetensors"  // the adapters, loadable like the compiled initial ones
	OptimizerFile  = "optimizer.safetensors" // AdamW moments m.<name>, v.<name>
	StateFile      = "state.json"
	ConfigFile     = "config.yaml"
	checkpointPre  = "step-"
	tmpPre         = ".tmp-"
)

// Metadata keys a checkpoint's adapters.safetensors carries besides the
// compiled adapters' own (rank, alpha, roles, base model): what was
// trained, so that a consumer such as LEAS can refuse the wrong kind.
const (
	MetaStep       = "step"        // completed GRPO steps
	MetaVariant    = "variant"     // Config.Variant
	MetaGradTokens = "grad_tokens" // Config.GradTokens
	MetaIsolation  = "isolation"   // Config.Isolation
)

// ErrNoCheckpoint is returned by LatestCheckpoint for a run without one.
var ErrNoCheckpoint = errors.New("grpo: no checkpoint")

// checkpointHook, when set (tests), runs after each file of a checkpoint
// is written into its temporary directory, before the rename.
var checkpointHook func(file string) error

// CheckpointName is the directory name of the checkpoint after step.
func CheckpointName(step int) string { return fmt.Sprintf("%s%06d", checkpointPre, step) }

// LatestCheckpoint returns the newest complete checkpoint of a run.
// Checkpoints appear by rename, so every step-N directory is complete;
// temporary directories of interrupted writes are ignored.
func LatestCheckpoint(run string) (string, error) {
	steps, err := checkpointSteps(run)
	if err != nil {
		return "", err
	}
	if len(steps) == 0 {
		return "", fmt.Errorf("%w in %s (start without --resume)", ErrNoCheckpoint, run)
	}
	return filepath.Join(run, CheckpointsDir, CheckpointName(steps[len(steps)-1])), nil
}

// checkpointSteps lists the run's checkpoint steps, ascending.
func checkpointSteps(run string) ([]int, error) {
	ents, err := os.ReadDir(filepath.Join(run, CheckpointsDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("grpo: %w", err)
	}
	var steps []int
	for _, e := range ents {
		rest, ok := strings.CutPrefix(e.Name(), checkpointPre)
		if !ok || !e.IsDir() {
			continue
		}
		if n, err := strconv.Atoi(rest); err == nil {
			steps = append(steps, n)
		}
	}
	sort.Ints(steps)
	return steps, nil
}

// startRun prepares a fresh run directory: it refuses one that already
// holds checkpoints (resume it or pick another) or files that a run does
// not write (nothing dartc did not create is replaced), and records the
// config.
func (tr *Trainer) startRun() error {
	steps, err := checkpointSteps(tr.opts.Run)
	if err != nil {
		return err
	}
	if len(steps) > 0 {
		return fmt.Errorf("grpo: %s already holds checkpoints (newest: step %d); pass --resume to continue it or choose another output directory", tr.opts.Run, steps[len(steps)-1])
	}
	if err := checkRunDir(tr.opts.Run); err != nil {
		return err
	}
	if err := os.MkdirAll(tr.opts.Run, 0o755); err != nil {
		return fmt.Errorf("grpo: %w", err)
	}
	os.Remove(filepath.Join(tr.opts.Run, MetricsFile))
	fp, err := tr.fingerprint()
	if err != nil {
		return err
	}
	return tr.writeRunFiles(fp)
}

// checkRunDir accepts, for a fresh run, a directory that does not exist, an
// empty one, or one that a run started without reaching a checkpoint (its
// run.json readable as a fingerprint, nothing in it but a run's files).
func checkRunDir(run string) error {
	ents, err := os.ReadDir(run)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("grpo: %w", err)
	}
	if len(ents) == 0 {
		return nil
	}
	ours := map[string]bool{ConfigFile: true, RunFile: true, MetricsFile: true, PlotsDir: true, CheckpointsDir: true}
	var foreign []string
	for _, e := range ents {
		// A crash can leave atomicfile's temporaries of the run's files.
		tmpOf := strings.HasPrefix(e.Name(), ".") && strings.Contains(e.Name(), ".tmp") &&
			(strings.HasPrefix(e.Name(), "."+ConfigFile) || strings.HasPrefix(e.Name(), "."+RunFile))
		if !ours[e.Name()] && !tmpOf {
			foreign = append(foreign, e.Name())
		}
	}
	fp, err := readFingerprint(run)
	if len(foreign) == 0 && err == nil && fp.ModelSHA256 != "" {
		return nil
	}
	// A run that wrote config.yaml and stopped before run.json (or one made
	// before runs had a run.json) is recognised by its config.
	if _, cerr := LoadConfig(filepath.Join(run, ConfigFile)); len(foreign) == 0 && errors.Is(err, os.ErrNotExist) && cerr == nil {
		return nil
	}
	why := "it has no readable " + RunFile
	if len(foreign) > 0 {
		why = "it holds " + strings.Join(foreign, ", ")
	}
	return fmt.Errorf("grpo: %s is not empty and not a dartc train run (%s): a new run writes into an empty or new directory; choose another -o", run, why)
}

// Checkpoint writes the current state as RUN/checkpoints/step-N: built in
// a temporary sibling directory (every file synced), renamed into place,
// the parent synced; then checkpoints beyond KeepCheckpoints are removed.
// A crash at any point leaves either the new checkpoint complete or none of
// it, and the previous ones untouched.
func (tr *Trainer) Checkpoint() (string, error) {
	root := filepath.Join(tr.opts.Run, CheckpointsDir)
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("grpo: checkpoint: %w", err)
	}
	// Leftovers of interrupted writes.
	if ents, err := os.ReadDir(root); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), tmpPre) {
				os.RemoveAll(filepath.Join(root, e.Name()))
			}
		}
	}
	final := filepath.Join(root, CheckpointName(tr.state.Step))
	tmp, err := os.MkdirTemp(root, tmpPre+CheckpointName(tr.state.Step)+"-")
	if err != nil {
		return "", fmt.Errorf("grpo: checkpoint: %w", err)
	}
	fail := func(err error) (string, error) {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("grpo: checkpoint %s: %w", final, err)
	}
	hook := func(name string) error {
		if checkpointHook != nil {
			return checkpointHook(name)
		}
		return nil
	}
	hp, hm, hv, err := tr.hostState()
	if err != nil {
		return fail(err)
	}
	var params, moments []safetensors.Tensor
	for _, n := range tr.names {
		p, err := toSafetensors(n, hp[n])
		if err != nil {
			return fail(err)
		}
		params = append(params, p)
		m, err := toSafetensors("m."+n, hm[n])
		if err != nil {
			return fail(err)
		}
		v, err := toSafetensors("v."+n, hv[n])
		if err != nil {
			return fail(err)
		}
		moments = append(moments, m, v)
	}
	meta := map[string]string{}
	for k, v := range tr.meta {
		meta[k] = v
	}
	meta[MetaStep] = strconv.Itoa(tr.state.Step)
	meta[MetaVariant] = tr.cfg.Variant
	meta[MetaGradTokens] = tr.cfg.GradTokens
	meta[MetaIsolation] = tr.cfg.Isolation
	if err := safetensors.Write(filepath.Join(tmp, AdaptersFile), params, meta); err != nil {
		return fail(err)
	}
	if err := hook(AdaptersFile); err != nil {
		return fail(err)
	}
	if err := safetensors.Write(filepath.Join(tmp, OptimizerFile), moments, map[string]string{"step": strconv.Itoa(tr.state.Update)}); err != nil {
		return fail(err)
	}
	if err := hook(OptimizerFile); err != nil {
		return fail(err)
	}
	sb, err := json.MarshalIndent(tr.state, "", "  ")
	if err != nil {
		return fail(err)
	}
	if err := atomicfile.WriteFile(filepath.Join(tmp, StateFile), append(sb, '\n')); err != nil {
		return fail(err)
	}
	if err := hook(StateFile); err != nil {
		return fail(err)
	}
	if err := syncDir(tmp); err != nil {
		return fail(err)
	}
	if _, err := os.Stat(final); err == nil {
		// The same step written again: move the old copy aside (it is
		// removed with the other leftovers at the next write).
		aside := filepath.Join(root, tmpPre+CheckpointName(tr.state.Step)+".old")
		os.RemoveAll(aside)
		if err := os.Rename(final, aside); err != nil {
			return fail(err)
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		return fail(err)
	}
	if err := syncDir(root); err != nil {
		return "", fmt.Errorf("grpo: checkpoint %s: %w", final, err)
	}
	tr.lastCkpt = tr.state.Step
	steps, err := checkpointSteps(tr.opts.Run)
	if err != nil {
		return final, err
	}
	for len(steps) > tr.cfg.KeepCheckpoints {
		os.RemoveAll(filepath.Join(root, CheckpointName(steps[0])))
		steps = steps[1:]
	}
	return final, nil
}

// load restores adapters, optimizer moments and state from a checkpoint.
func (tr *Trainer) load(dir string) error {
	af, err := safetensors.Read(filepath.Join(dir, AdaptersFile))
	if err != nil {
		return fmt.Errorf("grpo: checkpoint %s: %w", dir, err)
	}
	of, err := safetensors.Read(filepath.Join(dir, OptimizerFile))
	if err != nil {
		return fmt.Errorf("grpo: checkpoint %s: %w", dir, err)
	}
	params, err := tr.readAdapters(af, "")
	if err != nil {
		return fmt.Errorf("grpo: checkpoint %s: %w (was it written for another model?)", dir, err)
	}
	m, err := tr.readAdapters(of, "m.")
	if err != nil {
		return fmt.Errorf("grpo: checkpoint %s: %w", dir, err)
	}
	v, err := tr.readAdapters(of, "v.")
	if err != nil {
		return fmt.Errorf("grpo: checkpoint %s: %w", dir, err)
	}
	st, err := tr.readState(dir, af.Metadata[MetaStep], of.Metadata["step"])
	if err != nil {
		return err
	}
	tr.params, tr.m, tr.v, tr.state = params, m, v, st
	return nil
}

// LoadAdapters reads the adapters of a checkpoint directory (or any
// adapters.safetensors written by dartc) as float64 values by name.
func LoadAdapters(path string) (map[string][]float64, error) {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, AdaptersFile)
	}
	f, err := safetensors.Read(path)
	if err != nil {
		return nil, fmt.Errorf("grpo: %w", err)
	}
	out := map[string][]float64{}
	for _, t := range f.Tensors {
		v, err := t.Float64s()
		if err != nil {
			return nil, fmt.Errorf("grpo: %s: %w", path, err)
		}
		out[t.Name] = v
	}
	return out, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// readState reads and checks a checkpoint's state.json: strict JSON (no
// unknown or missing counters), counters in range, and consistent with
// the checkpoint's directory name, the adapters' recorded step
// (adaptersStep) and the optimizer's recorded update (optimizerStep), the
// run's seed and the data size.
func (tr *Trainer) readState(dir, adaptersStep, optimizerStep string) (State, error) {
	path := filepath.Join(dir, StateFile)
	fix := "remove this checkpoint directory to resume from the one before it, or start a new run"
	b, err := os.ReadFile(path)
	if err != nil {
		return State{}, fmt.Errorf("grpo: checkpoint: %w (%s)", err, fix)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return State{}, fmt.Errorf("grpo: checkpoint %s is not valid JSON: %w (%s)", path, err, fix)
	}
	for _, k := range []string{"step", "update", "epoch", "cursor", "seed", "nonfinite_run", "skipped"} {
		if _, ok := raw[k]; !ok {
			return State{}, fmt.Errorf("grpo: checkpoint %s has no %q (%s)", path, k, fix)
		}
	}
	var st State
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return State{}, fmt.Errorf("grpo: checkpoint %s: %w (%s)", path, err, fix)
	}
	name := filepath.Base(dir)
	var problems []string
	if want := CheckpointName(st.Step); name != want {
		problems = append(problems, fmt.Sprintf("step %d but the directory is %s", st.Step, name))
	}
	if adaptersStep != "" && adaptersStep != strconv.Itoa(st.Step) {
		problems = append(problems, fmt.Sprintf("step %d but %s records step %s", st.Step, AdaptersFile, adaptersStep))
	}
	if optimizerStep != "" && optimizerStep != strconv.Itoa(st.Update) {
		problems = append(problems, fmt.Sprintf("update %d but %s records update %s", st.Update, OptimizerFile, optimizerStep))
	}
	if st.Step < 0 || st.Update < 0 || st.Epoch < 0 || st.Cursor < 0 || st.Skipped < 0 || st.NonFiniteRun < 0 {
		problems = append(problems, "a negative counter")
	}
	if st.Update+st.Skipped < st.Step {
		problems = append(problems, fmt.Sprintf("%d updates and %d skipped in %d steps (every step makes at least one)", st.Update, st.Skipped, st.Step))
	}
	// A float16 run checkpointed before loss scaling has none (it starts
	// at the initial scale); a scale for another graph is an error.
	if st.LossScale < 0 || st.ScaleGood < 0 || (st.LossScale > 0 && !tr.scaled) {
		problems = append(problems, fmt.Sprintf("loss scale %g (good updates %d) for a train graph that takes none", st.LossScale, st.ScaleGood))
	}
	if st.NonFiniteRun > st.Skipped {
		problems = append(problems, fmt.Sprintf("%d skipped in a row but %d skipped in all", st.NonFiniteRun, st.Skipped))
	}
	if st.Seed != tr.cfg.Seed && !tr.overrides(ConfigKeySeed) {
		problems = append(problems, fmt.Sprintf("seed %d but the run's seed is %d", st.Seed, tr.cfg.Seed))
	}
	if st.Cursor > len(tr.opts.Data) && !tr.overrides(OverrideData) {
		problems = append(problems, fmt.Sprintf("data cursor %d past the %d examples", st.Cursor, len(tr.opts.Data)))
	}
	if len(problems) > 0 {
		return State{}, fmt.Errorf("grpo: checkpoint %s is inconsistent: %s (%s)", path, strings.Join(problems, "; "), fix)
	}
	if tr.overrides(ConfigKeySeed) {
		st.Seed = tr.cfg.Seed
	}
	if st.Cursor > len(tr.opts.Data) {
		st.Cursor = len(tr.opts.Data) // new data: the next step starts its next epoch
	}
	return st, nil
}

// ConfigKeySeed is the seed's key.
const ConfigKeySeed = "seed"

// overrides reports whether Options.Override names key.
func (tr *Trainer) overrides(key string) bool {
	for _, k := range tr.opts.Override {
		if strings.ReplaceAll(strings.TrimSpace(k), "-", "_") == key {
			return true
		}
	}
	return false
}
