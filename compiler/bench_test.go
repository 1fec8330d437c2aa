package compiler_test

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/dartc/dartc/benchcmp"
	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/runtime"
)

// BenchmarkTrainVsLogprobs runs train.onnx (forward, GRPO loss, backward)
// and logprobs.onnx (forward only) on the same batch of the tiny model with
// 4 layers, and reports the ratio of their times.
func BenchmarkTrainVsLogprobs(b *testing.B) {
	if _, err := runtime.Init(); err != nil {
		b.Fatal(err)
	}
	out, man := tinyCompiled(b, 4, synth.Options{Seed: 1})
	train := session(b, filepath.Join(out, "train.onnx"))
	lp := session(b, filepath.Join(out, "logprobs.onnx"))
	for _, seq := range []int{64, 256, 512} {
		b.Run(fmt.Sprintf("batch=2/seq=%d", seq), func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, uint64(seq)))
			bt := newBatch(rng, man.Model.Vocab, seq, func(i int) int64 { return int64(i/7) % 2 })
			bt.b = 2
			in := bt.feeds(b)
			for k, v := range randomAdapters(b, man, rng, man.LoRA.Roles...) {
				in[k] = v
			}
			lpIn := map[string]*runtime.Tensor{}
			for k, v := range in {
				lpIn[k] = v
			}
			bt.lossFeeds(b, rng, in)
			var tTrain, tLP time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				start := time.Now()
				run(b, lp, lpIn)
				tLP += time.Since(start)
				start = time.Now()
				run(b, train, in)
				tTrain += time.Since(start)
			}
			b.ReportMetric(float64(tTrain)/float64(tLP), "train/logprobs")
			b.ReportMetric(float64(tTrain.Milliseconds())/float64(b.N), "train-ms")
			b.ReportMetric(float64(tLP.Milliseconds())/float64(b.N), "logprobs-ms")
			b.ReportMetric(peakRSSMiB(), "peak-MiB")
		})
	}
}

// peakRSSMiB is the process's peak resident set (VmHWM), in MiB; 0 where
// /proc cannot tell.
func peakRSSMiB() float64 {
	kib, err := benchcmp.PeakRSSKiB()
	if err != nil {
		return 0
	}
	return float64(kib) / 1024
}

// BenchmarkTrainMemory152k runs train.onnx on a Qwen2-shaped model of about
// 100M parameters before the embedding (12 layers, hidden 768) with Qwen2's
// 151,936-token vocabulary at batch 4 × 512 tokens, loss on every position,
// and reports the step time and the process's peak RSS (run it alone:
// go test -run '^$' -bench TrainMemory152k -benchtime 3x ./compiler).
func BenchmarkTrainMemory152k(b *testing.B) {
	out, man := compile100M(b, "100m-152k", 151936)
	train := session(b, filepath.Join(out, "train.onnx"))
	in := trainFeeds4(b, man, rand.New(rand.NewPCG(1, 512)), 512)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		run(b, train, in)
	}
	b.ReportMetric(time.Since(start).Seconds()/float64(b.N), "s/step")
	b.ReportMetric(peakRSSMiB()/1024, "peak-GiB")
}

// qwen100M is a Qwen2 shape of about 100M parameters before the
// embedding (12 layers, hidden 768) with the given vocabulary.
func qwen100M(name string, vocab int) qwen2.Config {
	return qwen2.Config{Name: name, Layers: 12, Hidden: 768, Heads: 12, KVHeads: 2, HeadDim: 64, Intermediate: 2048,
		Vocab: vocab, RopeTheta: 1e6, RMSEps: 1e-6, TiedEmbed: true, QKVBias: true, MaxPositions: 4096}
}

// compile100M synthesizes the ~100M Qwen2 shape (12 layers, hidden 768)
// with the given vocabulary and compiles its decode and train graphs
// (rank 16).
func compile100M(b *testing.B, name string, vocab int) (string, *manifest.Manifest) {
	if _, err := runtime.Init(); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	res, err := synth.Synthesize(qwen100M(name, vocab), filepath.Join(dir, "src"), synth.Options{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	man, err := compiler.Compile(res.ModelPath, out, compiler.Options{Rank: 16, Alpha: 32, Graphs: []string{"decode", "train"}})
	if err != nil {
		b.Fatal(err)
	}
	return out, man
}

// trainFeeds4 is train.onnx's feeds for a batch of 4 rows of seq tokens
// (newBatch's two, one of them padded, and two unpadded ones), random
// adapters of every role and the loss on every position.
func trainFeeds4(b *testing.B, man *manifest.Manifest, rng *rand.Rand, seq int) map[string]*runtime.Tensor {
	bt := newBatch(rng, man.Model.Vocab, seq, func(i int) int64 { return int64(i/7) % 2 })
	bt.b = 4
	for r := 2; r < 4; r++ { // newBatch makes two rows: add two unpadded ones
		for i := 0; i < bt.s; i++ {
			bt.ids = append(bt.ids, rng.Int64N(man.Model.Vocab))
			bt.role = append(bt.role, int64(i/7)%2)
			bt.mask, bt.pos = append(bt.mask, 1), append(bt.pos, int64(i))
		}
	}
	in := bt.feeds(b)
	for k, v := range randomAdapters(b, man, rng, man.LoRA.Roles...) {
		in[k] = v
	}
	bt.lossFeeds(b, rng, in)
	return in
}

// BenchmarkTrain100M runs train.onnx (forward, GRPO loss, backward to the
// LoRA adapters; rank 16) on the ~100M Qwen2 shape (12 layers, hidden 768,
// vocab 32,768) at batch 4 × 256 and 4 × 512 tokens, loss on every
// position, and reports seconds per step (the first run, which sizes ORT's
// arena, is not timed). DARTC_ORT_PROFILE=prefix writes ORT's per-node
// profile. Run it alone:
// go test -run '^$' -bench Train100M -benchtime 3x ./compiler
func BenchmarkTrain100M(b *testing.B) {
	out, man := compile100M(b, "100m", 32768)
	train := session(b, filepath.Join(out, "train.onnx"))
	for _, seq := range []int{256, 512} {
		b.Run(fmt.Sprintf("batch=4/seq=%d", seq), func(b *testing.B) {
			in := trainFeeds4(b, man, rand.New(rand.NewPCG(1, uint64(seq))), seq)
			run(b, train, in)
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				run(b, train, in)
			}
			b.ReportMetric(time.Since(start).Seconds()/float64(b.N), "s/step")
			b.ReportMetric(peakRSSMiB()/1024, "peak-GiB")
		})
	}
}
