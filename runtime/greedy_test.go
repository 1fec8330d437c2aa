package runtime_test

import (
	"context"
	"math"
	"testing"

	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/runtime"
)

// TestGreedyOutputsMatchLogits: greedy decoding from decode.onnx's
// next_token / next_logprob outputs picks the tokens, with the log-probs,
// that the logits path computes in Go.
func TestGreedyOutputsMatchLogits(t *testing.T) {
	d, err := runtime.NewDecoderFromManifest(compileDecode(t, 0, synth.Options{Seed: 3}), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Destroy()
	adapters := zeroInputs(d)
	prompts := [][]int64{{5, 17, 300}, {9}, {1, 2, 3, 4, 5}}
	gen := runtime.GenerateConfig{MaxNewTokens: 12, PadToken: 0, Inputs: adapters}
	fast, _, err := d.Generate(context.Background(), prompts, gen)
	if err != nil {
		t.Fatal(err)
	}
	gen.KeepLastLogits = true // needs the logits: the Go path
	slow, _, err := d.Generate(context.Background(), prompts, gen)
	if err != nil {
		t.Fatal(err)
	}
	for i := range prompts {
		for k := range slow[i].Tokens {
			if fast[i].Tokens[k] != slow[i].Tokens[k] {
				t.Fatalf("row %d step %d: graph argmax %d, Go argmax %d", i, k, fast[i].Tokens[k], slow[i].Tokens[k])
			}
			if d := math.Abs(fast[i].LogProbs[k] - slow[i].LogProbs[k]); d > 1e-5 {
				t.Fatalf("row %d step %d: log-probs %g vs %g", i, k, fast[i].LogProbs[k], slow[i].LogProbs[k])
			}
		}
	}
}
