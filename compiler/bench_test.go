package compiler_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"runtime/debug"
	"testing"
	"time"

	"github.com/dartc/dartc/benchcmp"
	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/eval/stats"
	"github.com/dartc/dartc/ir"
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
// compiled as exported and with --share-embedding, and reports the step
// time and the process's peak RSS over each variant's steps (run it alone:
// go test -run '^$' -bench TrainMemory152k -benchtime 2x ./compiler; the
// second step's peak is the steady one).
func BenchmarkTrainMemory152k(b *testing.B) {
	for _, share := range []bool{false, true} {
		b.Run(fmt.Sprintf("share-embedding=%v", share), func(b *testing.B) {
			outs, man := compile100MVariants(b, "100m-152k", 151936, compiler.Options{ShareEmbedding: share})
			train := graphSession(b, outs[0], man, "train") // as the trainer opens it: the manifest's session config
			in := trainFeeds4(b, man, rand.New(rand.NewPCG(1, 512)), 512)
			// The peak covers the steps: the weights, ORT's buffers and
			// the activations, not the synthesis and compilation before
			// them (nor the other variant, whose session is gone).
			debug.FreeOSMemory()
			if err := benchcmp.ResetPeakRSS(); err != nil {
				b.Fatal(err)
			}
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
	outs, man := compile100MVariants(b, name, vocab, compiler.Options{})
	return outs[0], man
}

// compile100MVariants synthesizes the ~100M shape once and compiles its
// decode and train graphs once per variant: Options with Rank, Alpha and
// Graphs set (rank 16, alpha 32).
func compile100MVariants(b *testing.B, name string, vocab int, variants ...compiler.Options) ([]string, *manifest.Manifest) {
	if _, err := runtime.Init(); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	res, err := synth.Synthesize(qwen100M(name, vocab), filepath.Join(dir, "src"), synth.Options{Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	var outs []string
	var man *manifest.Manifest
	for i, o := range variants {
		out := filepath.Join(dir, fmt.Sprintf("out%d", i))
		o.Rank, o.Alpha, o.Graphs = 16, 32, []string{"decode", "train"}
		if man, err = compiler.Compile(res.ModelPath, out, o); err != nil {
			b.Fatal(err)
		}
		outs = append(outs, out)
	}
	return outs, man
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

// BenchmarkAttentionBlocks compares train.onnx with block-causal
// attention (the default blocks) against the full score square (one
// block) on the ~100M shape at batch 4: both sessions in one process,
// their steps interleaved (A B A B …), and reports each one's median and
// the ratio blocked / full. Two sessions: about 14 GiB at 512 tokens.
// go test -run '^$' -bench AttentionBlocks -benchtime 4x ./compiler
func BenchmarkAttentionBlocks(b *testing.B) {
	outs, man := compile100MVariants(b, "100m", 32768, compiler.Options{AttentionBlocks: 1}, compiler.Options{})
	full, blocked := quietTrain(b, outs[0], nil), quietTrain(b, outs[1], nil)
	for _, seq := range []int{256, 512} {
		b.Run(fmt.Sprintf("batch=4/seq=%d", seq), func(b *testing.B) {
			in := trainFeeds4(b, man, rand.New(rand.NewPCG(1, uint64(seq))), seq)
			sideBySide(b, "full", "blocks", full, blocked, in, 1e-3)
		})
	}
}

// BenchmarkGroupedAttention compares train.onnx of the ~100M shape (12
// query heads, 2 kv heads) with the attention blocks over the exporter's
// repeated keys and values against the same blocks over grouped queries
// (each kv head's six query heads multiplied as one matrix against its
// keys): both in one process, steps interleaved, at batch 4 × 256 and
// 4 × 512.
// go test -run '^$' -bench GroupedAttention -benchtime 4x ./compiler
func BenchmarkGroupedAttention(b *testing.B) {
	restore := compiler.WithRepeatedKV()
	repeated, man := compile100M(b, "100m", 32768)
	restore()
	grouped, _ := compile100M(b, "100m", 32768)
	sr, sg := quietTrain(b, repeated, nil), quietTrain(b, grouped, nil)
	for _, seq := range []int{256, 512} {
		b.Run(fmt.Sprintf("batch=4/seq=%d", seq), func(b *testing.B) {
			in := trainFeeds4(b, man, rand.New(rand.NewPCG(1, uint64(seq))), seq)
			sideBySide(b, "repeated", "grouped", sr, sg, in, 1e-3)
		})
	}
}

// BenchmarkSumVsAdds times what the autodiff emits to add up a value's
// gradient contributions, ONNX Runtime's variadic Sum against the chain of
// Adds it emits now, on k float32 [1024, 768] inputs (a residual stream's
// gradient at 4 × 256 tokens on the ~100M shape): both graphs in one
// process, runs interleaved; each graph also applies one Relu to each
// input and to the result, the same in both.
// go test -run '^$' -bench SumVsAdds -benchtime 40x ./compiler
func BenchmarkSumVsAdds(b *testing.B) {
	if _, err := runtime.Init(); err != nil {
		b.Fatal(err)
	}
	const rows, cols = 1024, 768
	for _, k := range []int{2, 3, 4, 6} {
		b.Run(fmt.Sprintf("inputs=%d", k), func(b *testing.B) {
			dir := b.TempDir()
			feeds := map[string]*runtime.Tensor{}
			rng := rand.New(rand.NewPCG(7, uint64(k)))
			build := func(chain bool) *runtime.Session {
				g := &ir.Graph{Name: "sum"}
				bd := ir.NewBuilder(g)
				var rs []string
				for i := range k {
					name := fmt.Sprintf("x%d", i)
					g.Inputs = append(g.Inputs, &ir.ValueInfo{Name: name, Type: ir.TensorType(ir.Float32, ir.Dims(rows, cols)...)})
					rs = append(rs, bd.Op(name+"/Relu", "Relu", []string{name}))
					if _, ok := feeds[name]; !ok {
						v := make([]float32, rows*cols)
						for j := range v {
							v[j] = rng.Float32()
						}
						t, err := runtime.FromFloat32([]int64{rows, cols}, v)
						if err != nil {
							b.Fatal(err)
						}
						feeds[name] = t
					}
				}
				acc := rs[0]
				if chain {
					for i, r := range rs[1:] {
						acc = bd.Op(fmt.Sprintf("add%d", i), "Add", []string{acc, r})
					}
				} else {
					acc = bd.Op("sum", "Sum", rs)
				}
				g.Nodes = append(g.Nodes, &ir.Node{Name: "out", OpType: "Relu", Inputs: []string{acc}, Outputs: []string{"y"}})
				g.Outputs = []*ir.ValueInfo{{Name: "y", Type: ir.TensorType(ir.Float32, ir.Dims(rows, cols)...)}}
				m := &ir.Model{Graph: g, IRVersion: ir.IRVersionForOpset(17)}
				m.SetOpset("", 17)
				path := filepath.Join(dir, fmt.Sprintf("chain%v.onnx", chain))
				if err := ir.Save(m, path, ir.EmitOptions{}); err != nil {
					b.Fatal(err)
				}
				s, err := runtime.NewSession(path, &runtime.Options{Config: map[string]string{"session.intra_op.allow_spinning": "0"}})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { s.Destroy() })
				return s
			}
			sum, adds := build(false), build(true)
			want, got := run(b, sum, feeds)["y"].Float32(), run(b, adds, feeds)["y"].Float32()
			for i := range want {
				if math.Abs(float64(want[i]-got[i])) > 1e-5*float64(k) {
					b.Fatalf("element %d: Sum %g, Adds %g", i, want[i], got[i])
				}
			}
			b.ResetTimer()
			ta, tb := interleave(b, sum, adds, feeds, b.N)
			da, db := stats.Describe(ta), stats.Describe(tb)
			b.ReportMetric(da.Median*1e3, "sum-ms")
			b.ReportMetric(db.Median*1e3, "adds-ms")
			b.ReportMetric(db.Median/da.Median, "ratio")
		})
	}
}

// compileWithAndWithout synthesizes cfg once and compiles its decode and
// train graphs twice (rank 16, alpha 32): without the named pass and with
// it; it returns both output directories and the second's manifest.
func compileWithAndWithout(b *testing.B, cfg qwen2.Config, so synth.Options, pass string) (without, with string, man *manifest.Manifest) {
	b.Helper()
	if _, err := runtime.Init(); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	res, err := synth.Synthesize(cfg, filepath.Join(dir, "src"), so)
	if err != nil {
		b.Fatal(err)
	}
	without, with = filepath.Join(dir, "without"), filepath.Join(dir, "with")
	opts := compiler.Options{Rank: 16, Alpha: 32, Graphs: []string{"decode", "train"}}
	restore := compiler.WithoutPass(pass)
	_, err = compiler.Compile(res.ModelPath, without, opts)
	restore()
	if err != nil {
		b.Fatal(err)
	}
	if man, err = compiler.Compile(res.ModelPath, with, opts); err != nil {
		b.Fatal(err)
	}
	return without, with, man
}

// quietTrain opens dir's train.onnx for a side-by-side comparison, with the
// settings of man's train graph when man is not nil: two sessions, two
// thread pools, so neither may spin while the other runs.
func quietTrain(b *testing.B, dir string, man *manifest.Manifest) *runtime.Session {
	b.Helper()
	quiet := &runtime.Options{Config: map[string]string{"session.intra_op.allow_spinning": "0"}}
	if man != nil {
		var err error
		if quiet, err = runtime.ForGraph(man.Graphs["train"], *quiet); err != nil {
			b.Fatal(err)
		}
	}
	s, err := runtime.NewSession(filepath.Join(dir, "train.onnx"), quiet)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Destroy() })
	return s
}

// sideBySide checks that train.onnx sessions a and b (two compiles of one
// model) give the same loss on in, to rel, then runs them in turn (A B A B
// …, b.N steps each) and reports each one's median seconds per step,
// "<nameA>-s/step" and "<nameB>-s/step", the ratio B / A, and the ratio
// of their fastest steps (less sensitive to a loaded machine).
func sideBySide(b *testing.B, nameA, nameB string, sa, sb *runtime.Session, in map[string]*runtime.Tensor, rel float64) {
	b.Helper()
	want, got := run(b, sa, in)["loss"].Float32()[0], run(b, sb, in)["loss"].Float32()[0]
	if math.Abs(float64(want-got)) > rel*math.Abs(float64(want)) {
		b.Fatalf("loss: %s %g, %s %g", nameA, want, nameB, got)
	}
	b.ResetTimer()
	ta, tb := interleave(b, sa, sb, in, b.N)
	da, db := stats.Describe(ta), stats.Describe(tb)
	b.ReportMetric(da.Median, nameA+"-s/step")
	b.ReportMetric(db.Median, nameB+"-s/step")
	b.ReportMetric(db.Median/da.Median, "ratio")
	b.ReportMetric(db.Min/da.Min, "min-ratio")
}

// interleave runs sessions a and b on in, in turn, rounds times each, and
// returns each one's step times in seconds.
func interleave(b *testing.B, sa, sb *runtime.Session, in map[string]*runtime.Tensor, rounds int) (ta, tb []float64) {
	b.Helper()
	for range rounds {
		start := time.Now()
		run(b, sa, in)
		ta = append(ta, time.Since(start).Seconds())
		start = time.Now()
		run(b, sb, in)
		tb = append(tb, time.Since(start).Seconds())
	}
	return ta, tb
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
	train := graphSession(b, out, man, "train") // as the trainer opens it: the manifest's session config
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

// BenchmarkFrozenGemm compares train.onnx of the ~100M shape (untied
// embedding) exported in the dynamo form (frozen linears MatMul(x, Transpose(W))) compiled with
// the frozen-gemm pass (Gemm(x, W, transB=1)) against the same graph
// without it, at batch 4 × 256: both sessions in one process, their steps
// interleaved (A B A B …), opened with the manifest's settings; it reports
// each one's median, the ratio gemm / matmul, and the CPU seconds each
// session took to open.
// go test -run '^$' -bench FrozenGemm -benchtime 4x ./compiler
func BenchmarkFrozenGemm(b *testing.B) {
	cfg := qwen100M("100m", 32768)
	cfg.TiedEmbed = false // a tied embedding turns pre-packing off, and with it the pass
	matmul, gemm, man := compileWithAndWithout(b, cfg, synth.Options{Seed: 1, LinearForm: synth.Dynamo}, "frozen-gemm")
	// The manifest's settings (the tied embedding's: no pre-packing); two
	// sessions, two thread pools: neither may spin while the other runs.
	quiet, err := runtime.ForGraph(man.Graphs["train"], runtime.Options{Config: map[string]string{"session.intra_op.allow_spinning": "0"}})
	if err != nil {
		b.Fatal(err)
	}
	mm, cm := openTimed(b, filepath.Join(matmul, "train.onnx"), quiet)
	defer mm.Destroy()
	gm, cg := openTimed(b, filepath.Join(gemm, "train.onnx"), quiet)
	defer gm.Destroy()
	in := trainFeeds4(b, man, rand.New(rand.NewPCG(1, 256)), 256)
	sideBySide(b, "matmul", "gemm", mm, gm, in, 1e-4)
	b.ReportMetric(cm, "matmul-open-cpu-s")
	b.ReportMetric(cg, "gemm-open-cpu-s")
}

// BenchmarkLoRAMerge compares train.onnx of the ~100M shape at batch 4 ×
// 256 compiled with the merge-lora-inputs pass (one A-side product per
// activation: q/k/v, gate/up) against the same model without it: both
// sessions in one process, opened with the manifest's settings, their steps
// interleaved (A B A B …); it reports each one's median and the ratios
// merged / separate of the medians and of the fastest steps.
// go test -run '^$' -bench LoRAMerge -benchtime 5x ./compiler
func BenchmarkLoRAMerge(b *testing.B) {
	separate, merged, man := compileWithAndWithout(b, qwen100M("100m", 32768), synth.Options{Seed: 1}, "merge-lora-inputs")
	sep, mer := quietTrain(b, separate, man), quietTrain(b, merged, man)
	in := trainFeeds4(b, man, rand.New(rand.NewPCG(1, 256)), 256)
	sideBySide(b, "separate", "merged", sep, mer, in, 1e-4)
}

// BenchmarkRotateHalf compares train.onnx of the ~100M shape at batch 4 ×
// 256 compiled with the rotate-half pass (rotate_half as one reversed
// Slice, its sign on the shared sine table) against the same model
// without it (Split, Neg, Concat): both sessions in one process, opened
// with the manifest's settings, their steps interleaved (A B A B …).
// go test -run '^$' -bench RotateHalf -benchtime 8x ./compiler
func BenchmarkRotateHalf(b *testing.B) {
	concat, swap, man := compileWithAndWithout(b, qwen100M("100m", 32768), synth.Options{Seed: 1}, "rotate-half")
	sc, ss := quietTrain(b, concat, man), quietTrain(b, swap, man)
	in := trainFeeds4(b, man, rand.New(rand.NewPCG(1, 256)), 256)
	sideBySide(b, "concat", "swap", sc, ss, in, 1e-4)
}
