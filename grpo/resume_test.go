package grpo

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestResumeEqualsStraightRun: 2N steps in one go give the same adapters,
// bit for bit, as N steps stopped by a cancelled context (the signal path)
// and N more after --resume. Two mini-batches of two micro-batches per
// step exercise the optimizer state and the data cursor across epochs.
func TestResumeEqualsStraightRun(t *testing.T) {
	dir := toyModel(t)
	for _, variant := range []string{VariantDual, VariantSingle} {
		t.Run(variant, func(t *testing.T) {
			cfg := toyTrainConfig()
			cfg.Variant = variant
			cfg.Steps, cfg.MiniBatch, cfg.MicroBatch, cfg.CheckpointEvery = 4, 6, 4, 0
			cfg.WarmupRatio = 0.5 // the schedule must survive the resume too
			data := toyData(5)    // 3 prompts a step: epochs end mid-step
			train := func(run string, resume bool, stopAfter int) *Trainer {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				tr, err := New(Options{Model: dir, Run: run, Config: cfg, Data: data, Resume: resume,
					Roller: newToyRoller(t, dir, 8), Reward: lowTokenReward,
					OnStep: func(m Metrics) {
						if m.Step == stopAfter {
							cancel()
						}
					}})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { tr.Close() })
				err = tr.Run(ctx)
				if stopAfter > 0 {
					if !errors.Is(err, context.Canceled) {
						t.Fatalf("stopped run: %v, want context.Canceled", err)
					}
				} else if err != nil {
					t.Fatal(err)
				}
				return tr
			}
			straight := train(filepath.Join(t.TempDir(), "a"), false, 0)
			runB := filepath.Join(t.TempDir(), "b")
			half := train(runB, false, 2)
			if half.State().Step != 2 {
				t.Fatalf("stopped at step %d, want 2", half.State().Step)
			}
			if _, err := os.Stat(filepath.Join(runB, CheckpointsDir, CheckpointName(2))); err != nil {
				t.Fatalf("no checkpoint written on stop: %v", err)
			}
			resumed := train(runB, true, 0)
			if a, b := straight.State(), resumed.State(); a != b {
				t.Fatalf("state %+v after the straight run, %+v after resuming", a, b)
			}
			want, got := adaptersOf(t, straight), adaptersOf(t, resumed)
			changed := false
			init := adaptersOf(t, half) // after step 2: differs from step 4
			for n, w := range want {
				if !bytes.Equal(w.Bytes(), got[n].Bytes()) {
					t.Errorf("adapter %s differs between the straight and the resumed run", n)
				}
				changed = changed || !bytes.Equal(w.Bytes(), init[n].Bytes())
			}
			if !changed {
				t.Fatal("steps 3–4 changed no adapter: the comparison is vacuous")
			}
			rows, err := ReadMetrics(filepath.Join(runB, MetricsFile))
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != 4 || rows[3].Step != 4 {
				t.Fatalf("resumed run's metrics have %d rows", len(rows))
			}
		})
	}
}
