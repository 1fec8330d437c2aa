package grpo

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
)

// peakRSS is the process's peak resident set (VmHWM) in MiB.
func peakRSS() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
			return kb / 1024
		}
	}
	return 0
}

// benchModel synthesizes and compiles cfg under b's temp dir.
func benchModel(b *testing.B, cfg qwen2.Config) string {
	b.Helper()
	orttest.Init(b)
	root := b.TempDir()
	res, err := synth.Synthesize(cfg, filepath.Join(root, "src"), synth.Options{KVCache: true, Seed: 7})
	if err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(root, "compiled")
	if _, err := compiler.Compile(res.ModelPath, out, compiler.Options{Rank: 8, Alpha: 16, Seed: 3}); err != nil {
		b.Fatal(err)
	}
	return out
}

// benchSteps times GRPO steps (8 rollouts of 32 sampled tokens: 2 prompts ×
// G 4, micro-batch 4) per variant, reporting each phase's seconds per step
// and the process's peak RSS; dual-host-tensors is the dual step on the
// host-tensor path (Options.HostTensors), the others keep their state
// resident on the execution device.
func benchSteps(b *testing.B, dir string) {
	for _, name := range []string{VariantDual, VariantSingle, VariantTwoAgent, VariantDual + "-host-tensors"} {
		variant, host := strings.CutSuffix(name, "-host-tensors")
		b.Run(name, func(b *testing.B) {
			cfg := toyTrainConfig()
			cfg.Variant, cfg.Prompts, cfg.Group, cfg.MicroBatch, cfg.Threads = variant, 2, 4, 4, 0
			cfg.Steps = b.N + 1
			tr, err := New(Options{Model: dir, Run: b.TempDir(), Config: cfg, Data: toyData(8),
				Roller: newToyRoller(b, dir, 32), Reward: lowTokenReward, HostTensors: host})
			if err != nil {
				b.Fatal(err)
			}
			defer tr.Close()
			if _, err := tr.Step(context.Background()); err != nil { // warm the sessions
				b.Fatal(err)
			}
			var sum Metrics
			b.ResetTimer()
			for range b.N {
				m, err := tr.Step(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				sum.RolloutSeconds += m.RolloutSeconds
				sum.ReferenceSeconds += m.ReferenceSeconds
				sum.TrainSeconds += m.TrainSeconds
				sum.OptimizerSeconds += m.OptimizerSeconds
			}
			n := float64(b.N)
			b.ReportMetric(sum.RolloutSeconds/n, "rollout-s/step")
			b.ReportMetric(sum.ReferenceSeconds/n, "reference-s/step")
			b.ReportMetric(sum.TrainSeconds/n, "train-s/step")
			b.ReportMetric(sum.OptimizerSeconds/n, "optimizer-s/step")
			b.ReportMetric(peakRSS(), "peak-RSS-MiB")
		})
	}
}

// BenchmarkStepTiny: the tiny preset (2 layers, hidden 64, vocab 2048).
func BenchmarkStepTiny(b *testing.B) {
	cfg, err := qwen2.Preset("tiny")
	if err != nil {
		b.Fatal(err)
	}
	benchSteps(b, benchModel(b, cfg))
}

// BenchmarkStep100M: a Qwen2-shaped model of about 100M parameters (12
// layers, hidden 768, vocab 32768). Run it alone for a meaningful RSS:
// go test -run '^$' -bench Step100M -benchtime 2x ./grpo
func BenchmarkStep100M(b *testing.B) {
	cfg := qwen2.Config{Name: "100m", Layers: 12, Hidden: 768, Heads: 12, KVHeads: 2, HeadDim: 64, Intermediate: 2048,
		Vocab: 32768, RopeTheta: 1e6, RMSEps: 1e-6, TiedEmbed: true, QKVBias: true, MaxPositions: 4096}
	b.Logf("%s: %.1fM parameters", cfg.Name, float64(cfg.ParamCount())/1e6)
	benchSteps(b, benchModel(b, cfg))
}

// BenchmarkEstimateMemory compares EstimateStep's peak memory with the
// measured peak RSS of a step (tiny preset with Qwen2's 151,936-token
// vocabulary, 4 rollouts of a fixed length, micro-batch 4, KL on). The
// process's high-water mark is reset before each size (/proc/self/clear_refs),
// so each size reports its own peak next to the estimate.
func BenchmarkEstimateMemory(b *testing.B) {
	cfg, _ := qwen2.Preset("tiny")
	cfg.Vocab = 151936
	dir := benchModel(b, cfg)
	man, err := manifest.Read(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, low := range []bool{true, false} {
		for _, n := range []int{61, 125, 253} {
			b.Run(fmt.Sprintf("low_memory=%v/seq=%d", low, n+3), func(b *testing.B) {
				c := toyTrainConfig()
				c.Prompts, c.Group, c.MicroBatch, c.Steps, c.LowMemory, c.Threads = 1, 2, 2, b.N+1, low, 0
				runtimeGC()
				if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
					b.Fatalf("reset the peak RSS: %v", err)
				}
				tr, err := New(Options{Model: dir, Run: b.TempDir(), Config: c, Data: toyData(2),
					Roller: newToyRoller(b, dir, n), Reward: lowTokenReward})
				if err != nil {
					b.Fatal(err)
				}
				defer tr.Close()
				for range b.N {
					if _, err := tr.Step(context.Background()); err != nil {
						b.Fatal(err)
					}
				}
				e := estimateFor(man, dir, c, 3, n+3)
				b.ReportMetric(e.PeakBytes/(1<<20), "estimate-MiB")
				b.ReportMetric(peakRSS(), "peak-MiB")
			})
		}
	}
}

// runtimeGC returns Go's free memory to the system, so that one size's
// garbage does not count in the next one's peak.
func runtimeGC() { debug.FreeOSMemory() }
