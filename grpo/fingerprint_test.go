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
	if err := os.WriteFile(state, good, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := open(changed, 4, dir, true); err != nil {
		t.Errorf("restored state.json: %v", err)
	}
}
