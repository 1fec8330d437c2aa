package runtime_test

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/runtime"
)

// openBoth compiles decode.onnx of a tiny synthesized Qwen2 (vocabulary
// vocab, random weights) and opens it twice: with host tensors at every
// step (the reference) and resident on the CPU device. The adapters are
// random and non-zero, so that the two agents' caches differ.
func openBoth(t testing.TB, vocab int) (host, resident *runtime.Decoder, adapters map[string]*runtime.Tensor) {
	t.Helper()
	out := compileDecode(t, vocab, synth.Options{Seed: 3, Weights: synth.WeightsRandom})
	opts := &runtime.Options{IntraOpThreads: 1}
	var err error
	if host, err = runtime.NewDecoderFromManifest(out, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { host.Destroy() })
	spec, err := runtime.ManifestDecoderSpec(out, opts)
	if err != nil {
		t.Fatal(err)
	}
	spec.Resident = true
	if resident, err = runtime.NewDecoder(spec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resident.Destroy() })
	adapters = map[string]*runtime.Tensor{}
	for _, in := range host.StaticInputs() {
		a := runtime.NewTensor(in.DType, in.Dims...)
		v := a.Float32()
		for i := range v {
			v[i] = float32(math.Sin(float64(i)+float64(len(in.Name)))) * 0.05
		}
		adapters[in.Name] = a
	}
	return host, resident, adapters
}

// TestResidentDecodeMovesNoState: two turns of generation, the second
// carrying each row's KV cache, on a resident decoder with adapters
// uploaded once give the same tokens, roles and log-probs — bit for bit —
// as the host-tensor decoder, for one agent and two, greedy, sampled in
// the graph and sampled in Go. While they run, no adapter, past or present
// tensor crosses between Go and ONNX Runtime: per step only the ids, mask,
// positions, roles, the sampler's feed and the drawn tokens and log-probs
// (and, where Go draws, the logits). The host decoder, counted the same
// way, moves the whole cache and the adapters at every step.
func TestResidentDecodeMovesNoState(t *testing.T) {
	host, res, adapters := openBoth(t, 64)
	dev, err := res.UploadInputs(adapters)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, d := range dev {
			d.Destroy()
		}
	}()
	state := func(name string) bool {
		return adapters[name] != nil || strings.HasPrefix(name, "past_key_values.") || strings.HasPrefix(name, "present.")
	}
	prompts := [][]int64{{1, 2, 3, 4, 5, 6, 7}, {9, 8}, {3, 3, 3, 3}}
	roles := func(row int, tokens []int64) int64 { return tokens[len(tokens)-1] % 2 }
	for _, agents := range []int{1, 2} {
		for _, mode := range []string{"greedy", "graph", "go"} {
			t.Run(fmt.Sprintf("agents=%d/%s", agents, mode), func(t *testing.T) {
				cfg := runtime.GenerateConfig{MaxNewTokens: 6, Seed: 5, Agents: agents, Roles: roles, StopTokens: []int64{0}}
				if mode != "greedy" {
					cfg.Sampling = runtime.Sampling{Temperature: 1, TopP: 0.9}
					cfg.HostSampling = mode == "go"
				}
				type result struct {
					seqs    [][]runtime.Sequence
					steps   int
					prefill int
					moved   runtime.Transfers
				}
				run := func(d *runtime.Decoder) result {
					c := cfg
					if d.Resident() {
						c.Resident = dev
					} else {
						c.Inputs = adapters
					}
					caches := make([]*runtime.RowCache, len(prompts))
					for i := range caches {
						caches[i] = &runtime.RowCache{}
						defer caches[i].Reset()
					}
					c.Cache = caches
					runtime.ResetTransferStats()
					var r result
					first, st, err := d.Generate(context.Background(), prompts, c)
					if err != nil {
						t.Fatal(err)
					}
					next := make([][]int64, len(prompts))
					for i, sq := range first {
						next[i] = append(append(append([]int64(nil), sq.Prompt...), sq.Tokens...), []int64{20, 21, 22, 23, 24}[:1+2*i]...)
					}
					c.Seed = 6
					second, st2, err := d.Generate(context.Background(), next, c)
					if err != nil {
						t.Fatal(err)
					}
					r.seqs, r.steps, r.moved = [][]runtime.Sequence{first, second}, (st.Steps+st2.Steps)*agents, runtime.TransferStats()
					r.prefill = st2.Prefill
					return r
				}
				want, got := run(host), run(res)
				if got.prefill != want.prefill {
					t.Errorf("the carried turn prefilled %d tokens resident, %d with host tensors", got.prefill, want.prefill)
				}
				for turn := range want.seqs {
					for i := range prompts {
						w, g := want.seqs[turn][i], got.seqs[turn][i]
						if fmt.Sprint(w.Tokens, w.Roles, w.Stop) != fmt.Sprint(g.Tokens, g.Roles, g.Stop) {
							t.Fatalf("turn %d row %d: host %v %v %s\n            resident %v %v %s", turn, i, w.Tokens, w.Roles, w.Stop, g.Tokens, g.Roles, g.Stop)
						}
						for j := range w.LogProbs {
							if w.LogProbs[j] != g.LogProbs[j] {
								t.Errorf("turn %d row %d token %d: log-prob host %.9g, resident %.9g", turn, i, j, w.LogProbs[j], g.LogProbs[j])
							}
						}
					}
				}
				for name, n := range got.moved.ByName {
					if state(name) {
						t.Errorf("resident: %s moved %d bytes between Go and ONNX Runtime", name, n)
					}
				}
				hostState := int64(0)
				for name, n := range want.moved.ByName {
					if state(name) {
						hostState += n
					}
				}
				if hostState == 0 {
					t.Fatal("the host decoder moved no adapter or cache bytes: the counters see nothing")
				}
				perStep := float64(got.moved.ToORT+got.moved.FromORT) / float64(got.steps)
				t.Logf("bytes crossing per step: resident %.0f, host %.0f (%d of them adapters and cache)",
					perStep, float64(want.moved.ToORT+want.moved.FromORT)/float64(want.steps), hostState/int64(want.steps))
			})
		}
	}
}
