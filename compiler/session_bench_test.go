package compiler_test

import (
	"math/rand/v2"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/runtime"
)

// BenchmarkSessionCreate compiles a Qwen2.5 preset (zero weights in sparse
// external data, each linear form) and measures how long ONNX Runtime takes
// to create a CPU session for each emitted graph, with the settings the
// trainer opens it with (the manifest's: adamw.onnx without ORT's
// optimizations), and the graph's node count. Select one with -bench 'SessionCreate/qwen2.5-0.5b/torchscript/train'.
func BenchmarkSessionCreate(b *testing.B) {
	if _, err := runtime.Init(); err != nil {
		b.Fatal(err)
	}
	for _, preset := range []string{"qwen2.5-0.5b", "qwen2.5-3b"} {
		for _, form := range []synth.LinearForm{synth.TorchScript, synth.Dynamo} {
			b.Run(preset+"/"+form.String(), func(b *testing.B) {
				cfg, err := qwen2.Preset(preset)
				if err != nil {
					b.Fatal(err)
				}
				dir := b.TempDir()
				res, err := synth.Synthesize(cfg, filepath.Join(dir, "src"), synth.Options{Weights: synth.WeightsZero, Storage: synth.StorageExternal, LinearForm: form})
				if err != nil {
					b.Fatal(err)
				}
				out := filepath.Join(dir, "out")
				man, err := compiler.Compile(res.ModelPath, out, compiler.Options{})
				if err != nil {
					b.Fatal(err)
				}
				for _, g := range []string{"logprobs", "train", "adamw"} {
					b.Run(g, func(b *testing.B) {
						path := filepath.Join(out, g+".onnx")
						m, err := ir.Load(path)
						if err != nil {
							b.Fatal(err)
						}
						nodes := len(m.Graph.Nodes)
						// The settings the trainer opens the graph with.
						opts, err := runtime.ForGraph(man.Graphs[g], runtime.Options{})
						if err != nil {
							b.Fatal(err)
						}
						var total time.Duration
						b.ResetTimer()
						for i := 0; i < b.N; i++ {
							start := time.Now()
							s, err := runtime.NewSession(path, opts)
							if err != nil {
								b.Fatal(err)
							}
							total += time.Since(start)
							s.Destroy()
						}
						b.ReportMetric(total.Seconds()/float64(b.N), "s/session")
						b.ReportMetric(float64(nodes), "nodes")
					})
				}
			})
		}
	}
}

// BenchmarkTrainStepSideBySide times train.onnx's step (batch 4, mixed
// roles, every real next token weighted) in two sessions of one process,
// run in turn (A B A B …), for each change that makes sessions open faster:
// the compiler's value_info against the same graph without it, and ONNX
// Runtime's weight prepacking on and off. It reports each side's minimum
// and median seconds per step, their ratio (B / A, medians) and the CPU
// seconds each session took to open. Select a shape with
// -bench 'TrainStepSideBySide/100m'.
func BenchmarkTrainStepSideBySide(b *testing.B) {
	orttest.Init(b)
	tiny, err := qwen2.Preset("tiny")
	if err != nil {
		b.Fatal(err)
	}
	m100 := qwen100M("100m", 32768)
	for _, sz := range []struct {
		cfg qwen2.Config
		seq int
	}{{tiny, 128}, {m100, 256}} {
		b.Run(sz.cfg.Name, func(b *testing.B) {
			dir := b.TempDir()
			res, err := synth.Synthesize(sz.cfg, filepath.Join(dir, "src"), synth.Options{Seed: 7})
			if err != nil {
				b.Fatal(err)
			}
			out := filepath.Join(dir, "out")
			man, err := compiler.Compile(res.ModelPath, out, compiler.Options{Rank: 8, Alpha: 16, Seed: 3})
			if err != nil {
				b.Fatal(err)
			}
			annotated := filepath.Join(out, "train.onnx")
			plain := filepath.Join(out, "train-plain.onnx")
			m, err := ir.Load(annotated)
			if err != nil {
				b.Fatal(err)
			}
			m.Graph.ValueInfo = nil
			if err := ir.Save(m, plain, ir.EmitOptions{}); err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			bt := newBatch(rng, man.Model.Vocab, sz.seq, func(i int) int64 { return int64(i/17) % 2 })
			bt = bt.times(2)
			feeds := bt.feeds(b)
			bt.lossFeeds(b, rng, feeds)
			for k, v := range randomAdapters(b, man, rng, man.LoRA.Roles...) {
				feeds[k] = v
			}
			noPrepack := &runtime.Options{Config: map[string]string{"session.disable_prepacking": "1"}}
			for _, pair := range []struct {
				name         string
				pathA, pathB string
				optsA, optsB *runtime.Options
			}{
				{"value_info", plain, annotated, nil, nil},
				{"no_prepacking", annotated, annotated, nil, noPrepack},
			} {
				b.Run(pair.name, func(b *testing.B) {
					sa, ca := openTimed(b, pair.pathA, pair.optsA)
					defer sa.Destroy()
					sb, cb := openTimed(b, pair.pathB, pair.optsB)
					defer sb.Destroy()
					interleave(b, sa, sb, feeds, 1) // the first run of each warms its session
					ta, tb := interleave(b, sa, sb, feeds, 3*b.N)
					minA, medA := minMedian(ta)
					minB, medB := minMedian(tb)
					b.ReportMetric(minA, "A-min-s/step")
					b.ReportMetric(medA, "A-median-s/step")
					b.ReportMetric(minB, "B-min-s/step")
					b.ReportMetric(medB, "B-median-s/step")
					b.ReportMetric(medB/medA, "B/A")
					b.ReportMetric(ca, "A-open-cpu-s")
					b.ReportMetric(cb, "B-open-cpu-s")
				})
			}
		})
	}
}

// openTimed opens a session and returns the process CPU seconds it took.
func openTimed(b *testing.B, path string, opts *runtime.Options) (*runtime.Session, float64) {
	c0 := cpuSeconds()
	s, err := runtime.NewSession(path, opts)
	if err != nil {
		b.Fatal(err)
	}
	return s, cpuSeconds() - c0
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

func minMedian(v []float64) (float64, float64) {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[0], s[len(s)/2]
}

// times repeats the batch's rows k times.
func (bt batch) times(k int) batch {
	out := batch{b: bt.b * k, s: bt.s}
	for range k {
		out.ids = append(out.ids, bt.ids...)
		out.mask = append(out.mask, bt.mask...)
		out.pos = append(out.pos, bt.pos...)
		out.role = append(out.role, bt.role...)
	}
	return out
}
