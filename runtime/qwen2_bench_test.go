package runtime_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/runtime"
)

// BenchmarkDecodeQwen2 is BenchmarkDecode on a compiled synthesized Qwen2
// with the real 151936-id vocabulary (hidden 64, 2 layers, float32, zero
// adapters): the vocabulary makes the per-step log-softmax the Go side's
// largest cost. Run: go test ./runtime -run '^$' -bench DecodeQwen2 -benchtime 1x
func BenchmarkDecodeQwen2(b *testing.B) {
	d, adapters := qwen2VocabDecoder(b)
	defer d.Destroy()
	for _, mode := range []string{"cache", "full"} {
		for _, batch := range []int{1, 8} {
			for _, n := range []int{128, 512} {
				b.Run(fmt.Sprintf("%s/batch=%d/tokens=%d", mode, batch, n), func(b *testing.B) {
					prompts := make([][]int64, batch)
					for i := range prompts {
						prompts[i] = []int64{151644, 872, 198, int64(1000 + 37*i), 30}[:3+i%3]
					}
					cfg := runtime.GenerateConfig{MaxNewTokens: n, PadToken: 151643, Inputs: adapters, NoCache: mode == "full"}
					measureGenerate(b, d, prompts, cfg)
				})
			}
		}
	}
}

// BenchmarkDecodeQwen25_05B decodes greedily through the compiled
// qwen2.5-0.5b preset (24 layers, hidden 896, 151936 vocabulary; zero
// weights in a sparse file, so the compute is a real 0.5B model's) with the
// KV cache, and reports the Go side's share of a step at a real model size.
// Run: go test ./runtime -run '^$' -bench DecodeQwen25_05B -benchtime 1x
func BenchmarkDecodeQwen25_05B(b *testing.B) {
	orttest.Init(b)
	dir := b.TempDir()
	cfg, _ := qwen2.Preset("qwen2.5-0.5b")
	res, err := synth.Synthesize(cfg, filepath.Join(dir, "src"), synth.Options{KVCache: true, Weights: synth.WeightsZero, Storage: synth.StorageExternal})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := compiler.Compile(res.ModelPath, filepath.Join(dir, "out"), compiler.Options{Graphs: []string{manifest.GraphDecode}}); err != nil {
		b.Fatal(err)
	}
	d, err := runtime.NewDecoderFromManifest(filepath.Join(dir, "out"), &runtime.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Destroy()
	adapters := map[string]*runtime.Tensor{}
	for _, in := range d.StaticInputs() {
		adapters[in.Name] = runtime.NewTensor(in.DType, in.Dims...)
	}
	for _, batch := range []int{1, 4} {
		b.Run(fmt.Sprintf("greedy/batch=%d/tokens=32", batch), func(b *testing.B) {
			prompts := make([][]int64, batch)
			for i := range prompts {
				prompts[i] = []int64{151644, 872, 198, int64(1000 + 37*i), 30}
			}
			cfg := runtime.GenerateConfig{MaxNewTokens: 32, PadToken: 151643, Inputs: adapters}
			measureGenerate(b, d, prompts, cfg)
		})
	}
}

// BenchmarkDecodeSampled compares greedy decoding with sampled decoding
// (temperature 1, top-p 0.95: the trainer's defaults) on the demo's model
// shape (BenchmarkDecodeQwen2's: 151,936-id vocabulary, hidden 64, 2
// layers), drawing in the graph ("graph") and in Go from the logits
// ("host", the reference sampler). Random weights give a nearly flat
// distribution, so the nucleus is most of the vocabulary.
// Run: go test ./runtime -run '^$' -bench DecodeSampled -benchtime 3x
func BenchmarkDecodeSampled(b *testing.B) {
	d, adapters := qwen2VocabDecoder(b)
	defer d.Destroy()
	for _, batch := range []int{1, 8} {
		for _, mode := range []string{"greedy", "graph", "host"} {
			b.Run(fmt.Sprintf("%s/batch=%d/tokens=128", mode, batch), func(b *testing.B) {
				prompts := make([][]int64, batch)
				for i := range prompts {
					prompts[i] = []int64{151644, 872, 198, int64(1000 + 37*i), 30}[:3+i%3]
				}
				cfg := runtime.GenerateConfig{MaxNewTokens: 128, PadToken: 151643, Inputs: adapters, Seed: 1}
				if mode != "greedy" {
					cfg.Sampling = runtime.Sampling{Temperature: 1, TopP: 0.95}
					cfg.HostSampling = mode == "host"
				}
				measureGenerate(b, d, prompts, cfg)
			})
		}
	}
}

// qwen2VocabDecoder compiles decode.onnx of a synthesized tiny Qwen2 with
// the real 151,936-id vocabulary (hidden 64, 2 layers, float32) and opens
// it, with zero adapters.
func qwen2VocabDecoder(b *testing.B) (*runtime.Decoder, map[string]*runtime.Tensor) {
	b.Helper()
	d, err := runtime.NewDecoderFromManifest(compileDecode(b, 151936, synth.Options{Seed: 1}), &runtime.Options{})
	if err != nil {
		b.Fatal(err)
	}
	return d, zeroInputs(d)
}
