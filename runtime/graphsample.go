package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/dartc/dartc/compiler/manifest"
)

// The decode graph's sampler (passes.SampleOutputs) draws the next token
// inside ONNX Runtime by rejection: each row gets `rounds` uniform numbers
// from its own seeded stream, each number proposes a token from the
// temperature/top-k distribution, and a proposal is accepted when the
// tokens more likely than it hold less than top-p of the mass. A row whose
// proposals were all rejected is drawn again with fresh numbers, from the
// same step's inputs.

// initSampler detects the sampler's inputs and outputs.
func (d *Decoder) initSampler() error {
	ins := []struct {
		name string
		dt   DType
		rank int
	}{
		{manifest.SampleTemperatureInput, Float32, 0}, {manifest.SampleTopKInput, Int64, 0},
		{manifest.SampleTopPInput, Float32, 0}, {manifest.SampleUniformInput, Float64, 2},
	}
	found := 0
	for _, want := range ins {
		io, ok := d.input(want.name)
		if !ok {
			continue
		}
		found++
		if io.DType != want.dt || len(io.Dims) != want.rank {
			return fmt.Errorf("sampler input %v: want %v of rank %d", io, want.dt, want.rank)
		}
		d.dynamic[want.name] = true
	}
	if found == 0 {
		return nil
	}
	if found != len(ins) {
		return fmt.Errorf("the graph has %d of the %d sampler inputs (%s, %s, %s, %s): recompile the model", found, len(ins),
			manifest.SampleTemperatureInput, manifest.SampleTopKInput, manifest.SampleTopPInput, manifest.SampleUniformInput)
	}
	for _, o := range []string{manifest.SampleTokenOutput, manifest.SampleLogprobOutput, manifest.SampleAcceptedOutput} {
		if _, ok := d.output(o); !ok {
			return fmt.Errorf("the graph has the sampler inputs but no output %q: recompile the model", o)
		}
	}
	d.sampler = d.greedy
	return nil
}

// HasGraphSampler reports whether decode.onnx samples in the graph.
func (d *Decoder) HasGraphSampler() bool { return d.sampler }

// sampleRounds is the number of proposals per row and draw for top-p
// settings: enough that every proposal of a row is rejected with
// probability below 5% (a proposal is accepted with probability ≥ p). Each
// round costs a pass over the vocabulary in every step, a redraw reruns
// the step: one round serves top-p 0.95.
func sampleRounds(s Sampling) int64 {
	if s.TopP <= 0 || s.TopP >= 1 {
		return 1
	}
	r := math.Ceil(math.Log(0.05) / math.Log(1-s.TopP))
	return int64(min(max(r, 1), 8))
}

// maxRedraws bounds the redraws of one step: a row is rejected in all its
// rounds with probability below 5%, so reaching it means the logits are not
// finite (the sampler rejects every proposal from NaN or +Inf logits) or the
// graph is wrong.
const maxRedraws = 64

// redrawError is the error of a step whose pending rows reached maxRedraws,
// res being the last run's sampler outputs. A proposal's log-prob that is
// not finite shows the logits are not; finite ones point at the graph.
func redrawError(step int, pending []bool, res map[string]*Tensor) error {
	lp := res[manifest.SampleLogprobOutput].Float32()
	var rows []string
	nonFinite := false
	for i, p := range pending {
		if p {
			rows = append(rows, strconv.Itoa(i))
			v := float64(lp[i])
			nonFinite = nonFinite || math.IsNaN(v) || math.IsInf(v, 0)
		}
	}
	which := "row " + strings.Join(rows, ", ")
	if len(rows) > 1 {
		which = "rows " + strings.Join(rows, ", ")
	}
	if nonFinite {
		return fmt.Errorf("runtime: generate step %d, %s: the logits are not finite (the sampler's log-prob is NaN or infinite), so the graph's sampler rejected every proposal %d times in a row: "+
			"a NaN or +Inf logit, most likely from diverged adapters or weights; check the adapters and the training run that wrote them (a NaN loss or grad norm)",
			step, which, maxRedraws)
	}
	return fmt.Errorf("runtime: generate step %d, %s: the graph's sampler rejected every proposal %d times in a row, with finite log-probs: decode.onnx's sampler is wrong; recompile the model, or draw in Go (GenerateConfig.HostSampling)",
		step, which, maxRedraws)
}

// feedSampler sets the sampler's inputs of one step: the settings, and
// uniforms for the rows in redraw (nil: every live row).
func (d *Decoder) feedSampler(in map[string]*Tensor, cfg *GenerateConfig, sampled bool, rows []rowState, rngs []*rand.Rand, redraw []bool) {
	t := NewTensor(Float32)
	k := NewTensor(Int64)
	p := NewTensor(Float32)
	rounds := int64(1)
	if sampled {
		t.Float32()[0] = float32(cfg.Sampling.Temperature)
		k.Int64()[0] = int64(cfg.Sampling.TopK)
		p.Float32()[0] = float32(cfg.Sampling.TopP)
		rounds = sampleRounds(cfg.Sampling)
	}
	in[manifest.SampleTemperatureInput] = t
	in[manifest.SampleTopKInput] = k
	in[manifest.SampleTopPInput] = p
	in[manifest.SampleUniformInput] = d.uniforms(rows, rngs, rounds, sampled, redraw)
}

// uniforms draws rounds numbers in (0, 1] per row that is live (and in
// redraw, when given) from the row's stream; other rows get 1.
func (d *Decoder) uniforms(rows []rowState, rngs []*rand.Rand, rounds int64, sampled bool, redraw []bool) *Tensor {
	u := NewTensor(Float64, int64(len(rows)), rounds)
	uv := u.Float64()
	for i := range rows {
		for r := int64(0); r < rounds; r++ {
			uv[int64(i)*rounds+r] = 1
		}
		if !sampled || rows[i].done || (redraw != nil && !redraw[i]) {
			continue
		}
		for r := int64(0); r < rounds; r++ {
			uv[int64(i)*rounds+r] = 1 - rngs[i].Float64()
		}
	}
	return u
}

// sampleOutputTensors pre-allocates the sampler's outputs for B rows.
func sampleOutputTensors(out map[string]*Tensor, B int64) {
	out[manifest.SampleTokenOutput] = NewTensor(Int64, B)
	out[manifest.SampleLogprobOutput] = NewTensor(Float32, B)
	out[manifest.SampleAcceptedOutput] = NewTensor(Bool, B)
}

// takeSamples copies the graph's draws of the live rows whose proposal was
// accepted (those in want, when given) into draws, and reports which live
// rows still need a draw.
func takeSamples(res map[string]*Tensor, rows []rowState, draws []draw, want []bool, pending []bool) int {
	tok := res[manifest.SampleTokenOutput].Int64()
	lp := res[manifest.SampleLogprobOutput].Float32()
	acc := res[manifest.SampleAcceptedOutput].Bool()
	n := 0
	for i := range rows {
		pending[i] = false
		if rows[i].done || (want != nil && !want[i]) {
			continue
		}
		if !acc[i] {
			pending[i] = true
			n++
			continue
		}
		draws[i] = draw{token: tok[i], logProb: float64(lp[i])}
	}
	return n
}

// samplerFeed returns the sampler's inputs for one step (nil when the graph
// has no sampler): the settings, and uniforms for the live rows (only those
// in redraw, when given). Greedy and logits steps feed temperature 0, which
// takes the graph's greedy branch.
func (d *Decoder) samplerFeed(cfg *GenerateConfig, sampled bool, rows []rowState, rngs []*rand.Rand, redraw []bool) map[string]*Tensor {
	if !d.dynamic[manifest.SampleUniformInput] {
		return nil
	}
	in := map[string]*Tensor{}
	d.feedSampler(in, cfg, sampled, rows, rngs, redraw)
	return in
}

// AddGreedySamplerFeeds adds to in the in-graph sampler's inputs that a
// session of decode.onnx has and in lacks, set for greedy decoding
// (temperature 0, which makes sample_token the argmax): for callers that
// run decode.onnx through a Session rather than a Decoder. The batch size
// is read off in's input_ids.
func AddGreedySamplerFeeds(s *Session, in map[string]*Tensor) {
	if _, ok := s.Input(manifest.SampleUniformInput); !ok {
		return
	}
	batch := int64(1)
	if ids := in["input_ids"]; ids != nil && len(ids.shape) > 0 {
		batch = ids.shape[0]
	}
	defaults := map[string]*Tensor{
		manifest.SampleTemperatureInput: NewTensor(Float32), manifest.SampleTopKInput: NewTensor(Int64),
		manifest.SampleTopPInput: NewTensor(Float32), manifest.SampleUniformInput: NewTensor(Float64, batch, 1),
	}
	for k, v := range defaults {
		if in[k] == nil {
			in[k] = v
		}
	}
}
