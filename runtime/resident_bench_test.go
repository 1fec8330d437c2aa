package runtime_test

import (
	"context"
	"testing"
	"time"

	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/runtime"
)

// BenchmarkRolloutResident compares rollouts that feed the adapters and
// the KV cache as host tensors at every step ("host") with the resident
// decoder ("resident": adapters bound once, the cache on the device between
// steps and turns), on the demo's model shape (synthesized tiny Qwen2 with
// the real 151,936-id vocabulary, hidden 64, 2 layers, float32), batch 8,
// sampled in the graph (temperature 1, top-p 0.95). A rollout is two turns
// of 64 tokens with a 32-token observation between them, the second
// carrying each row's cache. Both sides run in every iteration,
// interleaved; reported: tokens/s of each, their ratio, and the bytes
// crossing between Go and ONNX Runtime per graph run.
// Run: go test ./runtime -run '^$' -bench RolloutResident -benchtime 3x
func BenchmarkRolloutResident(b *testing.B) {
	spec, err := runtime.ManifestDecoderSpec(compileDecode(b, 151936, synth.Options{Seed: 1}), &runtime.Options{})
	if err != nil {
		b.Fatal(err)
	}
	host, err := runtime.NewDecoder(spec)
	if err != nil {
		b.Fatal(err)
	}
	defer host.Destroy()
	spec.Resident = true
	resident, err := runtime.NewDecoder(spec)
	if err != nil {
		b.Fatal(err)
	}
	defer resident.Destroy()
	adapters := zeroInputs(host)
	dev, err := resident.UploadInputs(adapters)
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		for _, t := range dev {
			t.Destroy()
		}
	}()
	const batch, turn, obs = 8, 64, 32
	prompts := make([][]int64, batch)
	for i := range prompts {
		prompts[i] = []int64{151644, 872, 198, int64(1000 + 37*i), 30}[:3+i%3]
	}
	type side struct {
		d            *runtime.Decoder
		time         time.Duration
		tokens, runs int
		bytes        int64
	}
	sides := []*side{{d: host}, {d: resident}}
	rollout := func(s *side, seed uint64) {
		cfg := runtime.GenerateConfig{MaxNewTokens: turn, PadToken: 151643, Seed: seed,
			Sampling: runtime.Sampling{Temperature: 1, TopP: 0.95}}
		if s.d.Resident() {
			cfg.Resident = dev
		} else {
			cfg.Inputs = adapters
		}
		caches := make([]*runtime.RowCache, batch)
		for i := range caches {
			caches[i] = &runtime.RowCache{}
			defer caches[i].Reset()
		}
		cfg.Cache = caches
		runtime.ResetTransferStats()
		start := time.Now()
		first, st, err := s.d.Generate(context.Background(), prompts, cfg)
		if err != nil {
			b.Fatal(err)
		}
		next := make([][]int64, batch)
		for i, sq := range first {
			next[i] = append(append([]int64(nil), sq.Prompt...), sq.Tokens...)
			for j := range obs {
				next[i] = append(next[i], int64(2000+j))
			}
			s.tokens += len(sq.Tokens)
		}
		cfg.Seed++
		second, st2, err := s.d.Generate(context.Background(), next, cfg)
		if err != nil {
			b.Fatal(err)
		}
		s.time += time.Since(start)
		for _, sq := range second {
			s.tokens += len(sq.Tokens)
		}
		m := runtime.TransferStats()
		s.bytes += m.ToORT + m.FromORT
		s.runs += st.Steps + st.Redraws + st2.Steps + st2.Redraws
	}
	seed := uint64(1)
	for b.Loop() {
		for _, s := range sides {
			rollout(s, seed)
		}
		seed += 2
	}
	rate := func(s *side) float64 { return float64(s.tokens) / s.time.Seconds() }
	b.ReportMetric(rate(sides[0]), "host-tokens/s")
	b.ReportMetric(rate(sides[1]), "resident-tokens/s")
	b.ReportMetric(rate(sides[1])/rate(sides[0]), "resident/host")
	b.ReportMetric(float64(sides[0].bytes)/float64(sides[0].runs), "host-B/run")
	b.ReportMetric(float64(sides[1].bytes)/float64(sides[1].runs), "resident-B/run")
}
