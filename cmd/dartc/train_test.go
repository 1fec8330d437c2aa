package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/grpo"
	"github.com/urfave/cli/v2"
)

// resolveTrainConfig runs the train command's flag parsing and returns the
// settings trainConfig resolves.
func resolveTrainConfig(t *testing.T, args ...string) (grpo.Config, error) {
	t.Helper()
	var cfg grpo.Config
	var cerr error
	cmd := *trainCommand
	cmd.Action = func(c *cli.Context) error {
		cfg, cerr = trainConfig(c)
		return nil
	}
	app := &cli.App{Name: "dartc", Commands: []*cli.Command{&cmd}, ExitErrHandler: func(*cli.Context, error) {}}
	base := []string{"dartc", "train", "--model", "m", "--data", "d", "--search", "s", "-o", "r"}
	if err := app.Run(interspersed(app, append(base, args...))); err != nil {
		return cfg, err
	}
	return cfg, cerr
}

func TestTrainSettingsPrecedence(t *testing.T) {
	def := grpo.DefaultConfig()
	cfg, err := resolveTrainConfig(t)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Group != def.Group || cfg.KLCoef != def.KLCoef || cfg.TopP != def.TopP {
		t.Fatalf("no file, no flags: got %+v, want the defaults", cfg)
	}
	file := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(file, []byte("group: 3\nsteps: 7\nlr: 0.0001\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err = resolveTrainConfig(t, "--config", file, "--steps", "9")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Group != 3 || cfg.LR != 1e-4 {
		t.Fatalf("the file's settings were not applied: group %d, lr %g", cfg.Group, cfg.LR)
	}
	if cfg.Steps != 9 {
		t.Fatalf("the flag did not override the file: steps %d", cfg.Steps)
	}
	if cfg.KLCoef != def.KLCoef {
		t.Fatalf("a setting in neither file nor flags lost its default: kl %g", cfg.KLCoef)
	}
	sr1 := grpo.SearchR1Config()
	if cfg, err := resolveTrainConfig(t, "--preset", "search-r1"); err != nil || cfg != sr1 || cfg.Prompts != 512 || cfg.MaxTurnTokens != 500 || cfg.MaxTurns != 4 {
		t.Fatalf("--preset search-r1: %v, %+v", err, cfg)
	}
	if cfg, err := resolveTrainConfig(t, "--preset", "search-r1", "--config", file, "--steps", "3"); err != nil || cfg.Group != 3 || cfg.Steps != 3 || cfg.Prompts != 512 {
		t.Fatalf("--preset, then the file, then the flags: %v, %+v", err, cfg)
	}
	if _, err := resolveTrainConfig(t, "--preset", "tpu"); err == nil || !strings.Contains(err.Error(), "search-r1") {
		t.Fatalf("an unknown preset: %v", err)
	}
	if err := os.WriteFile(file, []byte("group: 3\nno_such_key: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := resolveTrainConfig(t, "--config", file); err == nil || !strings.Contains(err.Error(), "no_such_key") {
		t.Fatalf("an unknown key in the file: got %v", err)
	}
	if _, err := resolveTrainConfig(t, "--variant", "triple"); err == nil {
		t.Fatal("an unknown variant was accepted")
	}
	if cfg, err := resolveTrainConfig(t, "--isolation", "strict"); err != nil || cfg.Isolation != grpo.IsolationStrict {
		t.Fatalf("--isolation strict: %v, %q", err, cfg.Isolation)
	}
	if _, err := resolveTrainConfig(t, "--isolation", "strict", "--variant", "single"); err == nil || !strings.Contains(err.Error(), "isolation") {
		t.Fatalf("--isolation strict with one adapter: %v", err)
	}
}

// TestEveryTrainSettingHasAFlag: docs/training.md promises a flag for every
// config.yaml key (the key with dashes), and the memory refusal names some
// of them; each flag sets its key.
func TestEveryTrainSettingHasAFlag(t *testing.T) {
	flags := map[string]bool{}
	for _, o := range trainOverrides {
		flags[o.flag.Names()[0]] = true
	}
	for _, k := range grpo.ConfigKeys() {
		if !flags[strings.ReplaceAll(k, "_", "-")] {
			t.Errorf("config key %s has no --%s flag", k, strings.ReplaceAll(k, "_", "-"))
		}
	}
	cfg, err := resolveTrainConfig(t, "--max-obs-tokens", "100", "--retrieve-tries", "7", "--clip-low", "0.1", "--clip-high", "0.28",
		"--beta2", "0.95", "--weight-decay", "0", "--max-grad-norm", "0.5", "--keep-checkpoints", "4", "--max-nonfinite", "2", "--recompute-old-logprobs")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxObsTokens != 100 || cfg.RetrieveTries != 7 || cfg.ClipLow != 0.1 || cfg.ClipHigh != 0.28 || cfg.Beta2 != 0.95 ||
		cfg.WeightDecay != 0 || cfg.MaxGradNorm != 0.5 || cfg.KeepCheckpoints != 4 || cfg.MaxNonFinite != 2 || !cfg.RecomputeOldLP {
		t.Errorf("the flags did not reach the settings: %+v", cfg)
	}
	for _, f := range []string{"--micro-batch", "--max-turn-tokens", "--max-obs-tokens", "--max-turns", "--low-memory"} {
		if !flags[strings.TrimPrefix(f, "--")] {
			t.Errorf("the memory refusal suggests %s, which is not a flag", f)
		}
	}
}
