package grpo

import (
	"context"
	"os"
	"testing"

	"github.com/dartc/dartc/trajectory"
)

// TestLearningSignal trains the toy model to emit low token ids. With a
// fixed seed the mean reward of the last steps rises clearly above the
// first steps'; with the reward negated (which flips every advantage's
// sign) it does not rise.
func TestLearningSignal(t *testing.T) {
	dir := toyModel(t)
	const steps = 12
	run := func(reward Reward) []float64 {
		cfg := toyTrainConfig()
		cfg.Steps, cfg.Prompts, cfg.Group = steps, 4, 4
		var curve []float64
		tr, err := New(Options{Model: dir, Run: t.TempDir(), Config: cfg, Data: toyData(8),
			Roller: newToyRoller(t, dir, 10), Reward: reward,
			OnStep: func(m Metrics) { curve = append(curve, m.RewardMean) }})
		if err != nil {
			t.Fatal(err)
		}
		defer tr.Close()
		if err := tr.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		return curve
	}
	mean := func(v []float64) float64 {
		s := 0.0
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	up := run(lowTokenReward)
	// The negated reward's curve is reported as the task reward.
	down := run(func(tj *trajectory.Trajectory) float64 { return -lowTokenReward(tj) })
	for i := range down {
		down[i] = -down[i]
	}
	t.Logf("reward per step, advantages as is:  %.2f", up)
	t.Logf("reward per step, advantages flipped: %.2f", down)
	firstUp, lastUp := mean(up[:3]), mean(up[steps-3:])
	firstDown, lastDown := mean(down[:3]), mean(down[steps-3:])
	if lastUp < firstUp+0.2 {
		t.Errorf("mean reward went from %.3f to %.3f: no clear rise", firstUp, lastUp)
	}
	if lastDown > firstDown+0.02 {
		t.Errorf("with flipped advantages the reward rose from %.3f to %.3f", firstDown, lastDown)
	}
}

// TestPlotRun draws the curves of a short run: one PNG per plot spec, each
// a real PNG file; a run without metrics is a clear error.
func TestPlotRun(t *testing.T) {
	dir := toyModel(t)
	run := t.TempDir()
	if _, err := PlotRun(run, ""); err == nil {
		t.Fatal("plotting a run without metrics passed")
	}
	cfg := toyTrainConfig()
	cfg.Steps = 2
	tr, err := New(Options{Model: dir, Run: run, Config: cfg, Data: toyData(4), Roller: newToyRoller(t, dir, 6), Reward: lowTokenReward})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	if err := tr.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	paths, err := PlotRun(run, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != len(plotSpecs) {
		t.Fatalf("%d plots, want %d", len(paths), len(plotSpecs))
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || len(b) < 8 || string(b[1:4]) != "PNG" {
			t.Fatalf("%s is not a PNG (%v)", p, err)
		}
	}
}
