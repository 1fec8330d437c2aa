package grpo

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/eval"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/trajectory"
)

// rssMiB is the process's current resident set (VmRSS), in MiB.
func rssMiB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// varyingRoller samples a different rollout length at every step.
type varyingRoller struct {
	*toyRoller
	rng     *rand.Rand
	lo, hi  int
	lengths []int
}

func (r *varyingRoller) Rollout(ctx context.Context, ex []eval.Example, group int, adapters map[string]*runtime.Tensor, seed uint64) ([]*trajectory.Trajectory, error) {
	r.newTok = r.lo + r.rng.IntN(r.hi-r.lo+1)
	r.lengths = append(r.lengths, r.newTok)
	return r.toyRoller.Rollout(ctx, ex, group, adapters, seed)
}

// BenchmarkMemoryVaryingLengths runs b.N GRPO steps whose rollouts have a
// different length each step (16 to 240 sampled tokens; tiny preset with
// Qwen2's 151,936-token vocabulary, 4 rollouts a step, micro-batch 2, KL
// on) and reports the resident set after the 5th step, after the last,
// the largest growth between them and the process's peak: with the
// chunked heads and micro-batches padded to multiples of LengthBucket the
// resident set stays flat after the first steps.
// go test -run '^$' -bench MemoryVaryingLengths -benchtime 50x ./grpo
func BenchmarkMemoryVaryingLengths(b *testing.B) {
	cfg, _ := qwen2.Preset("tiny")
	cfg.Vocab = 151936
	dir := benchModel(b, cfg)
	c := toyTrainConfig()
	c.Prompts, c.Group, c.MicroBatch, c.Steps, c.Threads = 2, 2, 2, b.N+1, 0
	c.KLCoef = 0.001
	roller := &varyingRoller{toyRoller: newToyRoller(b, dir, 16), rng: rand.New(rand.NewPCG(1, 2)), lo: 16, hi: 240}
	tr, err := New(Options{Model: dir, Run: b.TempDir(), Config: c, Data: toyData(8), Roller: roller, Reward: lowTokenReward})
	if err != nil {
		b.Fatal(err)
	}
	defer tr.Close()
	var at5, growth float64
	b.ResetTimer()
	for i := range b.N {
		if _, err := tr.Step(context.Background()); err != nil {
			b.Fatal(err)
		}
		rss := rssMiB()
		if i+1 == 5 {
			at5 = rss
		}
		if i+1 > 5 {
			growth = max(growth, rss-at5)
		}
		if testing.Verbose() {
			b.Logf("step %d: %d sampled tokens, RSS %.0f MiB", i+1, roller.lengths[i], rss)
		}
	}
	b.ReportMetric(at5, "rss-step5-MiB")
	b.ReportMetric(rssMiB(), "rss-last-MiB")
	b.ReportMetric(growth, "max-growth-after-step5-MiB")
	b.ReportMetric(peakRSS(), "peak-MiB")
}

// TestPadLenBuckets: micro-batches are padded to multiples of
// LengthBucket, never beyond the model's context unless a sequence itself
// is longer.
func TestPadLenBuckets(t *testing.T) {
	seqs := func(ns ...int) []*trajectory.Trajectory {
		var out []*trajectory.Trajectory
		for _, n := range ns {
			out = append(out, &trajectory.Trajectory{Tokens: make([]int64, n)})
		}
		return out
	}
	for _, c := range []struct {
		ctx  int64
		lens []int
		want int
	}{
		{0, []int{1}, 64}, {0, []int{64}, 64}, {0, []int{65, 3}, 128}, {0, []int{200, 130}, 256},
		{100, []int{65}, 100}, {100, []int{40}, 64}, {100, []int{120}, 120},
	} {
		tr := &Trainer{man: &manifest.Manifest{Model: manifest.ModelInfo{MaxLength: c.ctx}}}
		if got := tr.padLen(seqs(c.lens...)); got != c.want {
			t.Errorf("context %d, lengths %v: padded to %d, want %d", c.ctx, c.lens, got, c.want)
		}
	}
}
