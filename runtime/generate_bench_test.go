package runtime_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/dartc/dartc/runtime"
)

// BenchmarkDecode generates N tokens per row greedily on the tiny fp16
// LLaMA, with the KV cache and by full recomputation, and reports decode
// tokens/s and the share of the loop spent in Go rather than in ONNX
// Runtime's Run (goal < 5%). Run: make bench, or
// go test ./runtime -run '^$' -bench Decode -benchtime 3x
func BenchmarkDecode(b *testing.B) {
	d := openLlama(b, 0)
	for _, mode := range []string{"cache", "full"} {
		for _, batch := range []int{1, 8} {
			for _, n := range []int{128, 512} {
				b.Run(fmt.Sprintf("%s/batch=%d/tokens=%d", mode, batch, n), func(b *testing.B) {
					prompts := make([][]int64, batch)
					for i := range prompts {
						prompts[i] = batchPrompts[i%len(batchPrompts)]
					}
					cfg := runtime.GenerateConfig{MaxNewTokens: n, PadToken: 2, NoCache: mode == "full"}
					measureGenerate(b, d, prompts, cfg)
				})
			}
		}
	}
}

// measureGenerate runs Generate b.N times and reports tokens/s and the
// share of the time spent outside ONNX Runtime.
func measureGenerate(b *testing.B, d *runtime.Decoder, prompts [][]int64, cfg runtime.GenerateConfig) {
	b.Helper()
	var total, ort time.Duration
	tokens := 0
	for b.Loop() {
		seqs, st, err := d.Generate(context.Background(), prompts, cfg)
		if err != nil {
			b.Fatal(err)
		}
		total += st.Total
		ort += st.ORT
		for _, s := range seqs {
			tokens += len(s.Tokens)
		}
	}
	b.ReportMetric(float64(tokens)/total.Seconds(), "tokens/s")
	b.ReportMetric(100*float64(total-ort)/float64(total), "go-%")
}
