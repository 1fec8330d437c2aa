package grpo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/compiler"
)

// TestResumeRefusesAnotherRun: a resumed run must be the same run. Changed
// settings are refused unless overridden (then config.yaml is rewritten),
// other data likewise; another compiled model (other initial adapters) is
// always refused; a corrupt or inconsistent state.json is refused with the
// checkpoint named.
func TestResumeRefusesAnotherRun(t *testing.T) {
	dir := toyModel(t)
	cfg := toyTrainConfig()
	cfg.Steps = 1
	run := filepath.Join(t.TempDir(), "run")
	open := func(c Config, data int, model string, resume bool, override ...string) (*Trainer, error) {
		tr, err := New(Options{Model: model, Run: run, Config: c, Data: toyData(data), Resume: resume, Override: override,
			Roller: newToyRoller(t, dir, 6), Reward: lowTokenReward})
		if err == nil {
			t.Cleanup(func() { tr.Close() })
		}
		return tr, err
	}
	tr, err := open(cfg, 5, dir, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(run, RunFile)); err != nil {
		t.Fatalf("no fingerprint: %v", err)
	}
	if _, err := open(cfg, 5, dir, true); err != nil {
		t.Fatalf("resuming unchanged: %v", err)
	}

	changed := cfg
	changed.Steps, changed.LR = 2, 1e-3
	if _, err := open(changed, 5, dir, true); err == nil || !strings.Contains(err.Error(), "lr: 0.02 → 0.001") ||
		!strings.Contains(err.Error(), "--override steps,lr") {
		t.Errorf("changed steps and lr: %v", err)
	}
	if _, err := open(changed, 5, dir, true, "steps"); err == nil || !strings.Contains(err.Error(), "lr") || strings.Contains(err.Error(), "steps: 1") {
		t.Errorf("lr changed, only steps overridden: %v", err)
	}
	if _, err := open(changed, 5, dir, true, "nonsense"); err == nil || !strings.Contains(err.Error(), `"nonsense": not a setting`) {
		t.Errorf("unknown override: %v", err)
	}
	if _, err := open(changed, 5, dir, true, "steps", "lr"); err != nil {
		t.Fatalf("overridden: %v", err)
	}
	if got, err := LoadConfig(filepath.Join(run, ConfigFile)); err != nil || got.Steps != 2 || got.LR != 1e-3 {
		t.Errorf("config.yaml after the override: %+v, %v", got, err)
	}
	if _, err := open(changed, 5, dir, true); err != nil {
		t.Errorf("resuming with the rewritten settings: %v", err)
	}

	if _, err := open(changed, 4, dir, true); err == nil || !strings.Contains(err.Error(), "data: 5 examples") || !strings.Contains(err.Error(), "--override data") {
		t.Errorf("other data: %v", err)
	}
	if _, err := open(changed, 4, dir, true, "data"); err != nil {
		t.Errorf("other data, overridden: %v", err)
	}

	// The same source compiled with another seed: other initial adapters.
	other := filepath.Join(t.TempDir(), "compiled")
	if _, err := compiler.Compile(filepath.Join(filepath.Dir(dir), "src", "model.onnx"), other, compiler.Options{Rank: 4, Alpha: 8, Seed: 4}); err != nil {
		t.Fatal(err)
	}
	if _, err := open(changed, 4, other, true, "data", "steps", "lr"); err == nil || !strings.Contains(err.Error(), "initial adapters") {
		t.Errorf("another compiled directory: %v", err)
	}

	state := filepath.Join(run, CheckpointsDir, CheckpointName(1), StateFile)
	good, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, body, want string }{
		{"truncated", string(good[:len(good)/2]), "not valid JSON"},
		{"wrong step", strings.Replace(string(good), `"step": 1`, `"step": 7`, 1), "directory is step-000001"},
		{"missing counter", strings.Replace(string(good), `"update"`, `"updates"`, 1), `no "update"`},
		{"negative", strings.Replace(string(good), `"skipped": 0`, `"skipped": -2`, 1), "inconsistent"},
		{"no updates", strings.Replace(string(good), `"update": 1`, `"update": 0`, 1), "update 0 but optimizer.safetensors records update 1"},
	} {
		if tc.body == string(good) {
			t.Fatalf("%s: the edit did not apply to %s", tc.name, good)
		}
		if err := os.WriteFile(state, []byte(tc.body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := open(changed, 4, dir, true)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), state) {
			t.Errorf("%s state.json: %v", tc.name, err)
		}
	}
	// A resume that fails after its settings were accepted (here: the
	// checkpoint is unreadable) leaves config.yaml and run.json as they
	// were, so that the refusal still stands once the checkpoint is fixed.
	before := map[string][]byte{}
	for _, f := range []string{ConfigFile, RunFile} {
		if before[f], err = os.ReadFile(filepath.Join(run, f)); err != nil {
			t.Fatal(err)
		}
	}
	steps3 := changed
	steps3.Steps = 3
	if _, err := open(steps3, 5, dir, true, "data", "steps"); err == nil || !strings.Contains(err.Error(), state) {
		t.Errorf("override with a bad checkpoint: %v", err)
	}
	for f, b := range before {
		if now, err := os.ReadFile(filepath.Join(run, f)); err != nil || string(now) != string(b) {
			t.Errorf("a failed resume rewrote %s:\n%s\nwas:\n%s", f, now, b)
		}
	}
	if err := os.WriteFile(state, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := open(steps3, 5, dir, true); err == nil || !strings.Contains(err.Error(), "--override") {
		t.Errorf("resuming with the settings of the failed override, not overridden: %v", err)
	}
	if _, err := open(changed, 4, dir, true); err != nil {
		t.Errorf("restored state.json: %v", err)
	}
}

// TestFreshRunKeepsForeignFiles: a new run writes only into a new or empty
// directory, or one a run started without reaching a checkpoint; a
// directory holding anything else (a user's own config.yaml next to their
// notes) is refused and left byte for byte as it was.
func TestFreshRunKeepsForeignFiles(t *testing.T) {
	dir := toyModel(t)
	cfg := toyTrainConfig()
	cfg.Steps = 1
	open := func(run string) error {
		tr, err := New(Options{Model: dir, Run: run, Config: cfg, Data: toyData(4), Roller: newToyRoller(t, dir, 6), Reward: lowTokenReward})
		if err == nil {
			tr.Close()
		}
		return err
	}
	for _, files := range []map[string]string{
		{"notes.txt": "mine", ConfigFile: "# my experiment\nlr: 1\n"},
		{ConfigFile: "# my experiment\nlr: 1\n", MetricsFile: `{"my":"own metrics"}` + "\n", RunFile: `{"mine":1}`},
	} {
		run := t.TempDir()
		for name, body := range files {
			if err := os.WriteFile(filepath.Join(run, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := open(run); err == nil || !strings.Contains(err.Error(), "not a dartc train run") {
			t.Errorf("%v: %v", files, err)
		}
		for name, body := range files {
			if b, err := os.ReadFile(filepath.Join(run, name)); err != nil || string(b) != body {
				t.Errorf("%s changed to %q (%v)", name, b, err)
			}
		}
	}
	// A run that wrote its files and stopped before a checkpoint is
	// started again in place.
	run := t.TempDir()
	if err := open(run); err != nil {
		t.Fatal(err)
	}
	if err := open(run); err != nil {
		t.Errorf("restarting a run without checkpoints: %v", err)
	}
	// One that crashed between writing config.yaml and run.json, leaving
	// atomicfile's temporary, is its own too.
	if err := os.Remove(filepath.Join(run, RunFile)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(run, "."+RunFile+".tmp-123"), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := open(run); err != nil {
		t.Errorf("restarting a run that stopped before run.json: %v", err)
	}
}
