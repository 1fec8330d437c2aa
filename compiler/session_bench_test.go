package compiler_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/runtime"
)

// BenchmarkSessionCreate compiles a Qwen2.5 preset (zero weights in sparse
// external data, each linear form) and measures how long ONNX Runtime takes
// to create a CPU session for each emitted graph, with the graph's node
// count. Select one with -bench 'SessionCreate/qwen2.5-0.5b/torchscript/train'.
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
				if _, err := compiler.Compile(res.ModelPath, out, compiler.Options{}); err != nil {
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
						var total time.Duration
						b.ResetTimer()
						for i := 0; i < b.N; i++ {
							start := time.Now()
							s, err := runtime.NewSession(path, nil)
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
