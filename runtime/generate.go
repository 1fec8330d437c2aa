package runtime

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dartc/dartc/compiler/manifest"
)

// DecoderSpec describes a decoder graph with the Hugging Face KV-cache
// convention. Empty names take the defaults in brackets.
type DecoderSpec struct {
	// Path is the .onnx file.
	Path string
	// Options configure the session (nil: CPU defaults).
	Options *Options
	// InputIDs [input_ids], AttentionMask [attention_mask], PositionIDs
	// [position_ids] name the int64 inputs; the mask and the positions are fed
	// only when the graph has them.
	InputIDs, AttentionMask, PositionIDs string
	// Logits [logits] names the [batch, seq or 1, vocab] output.
	Logits string
	// Cache names each layer's past and present tensors. When empty, inputs
	// named past_key_values.N.key/value with outputs present.N.key/value are
	// found by name; a graph without them runs in full recomputation only.
	Cache []manifest.CacheLayer
	// KVHeads and HeadDim are the cache dims, needed only when the graph
	// leaves them symbolic.
	KVHeads, HeadDim int64
	// RoleInput, when set, is an int64 [batch, seq] input fed with the role
	// of every position (Generate's Roles callback; 0 without one).
	RoleInput string
	// MaxLength is the model's context in tokens (0: unlimited).
	MaxLength int64
	// Resident keeps the decoder's state on the execution device
	// (Options.Device, the CPU by default): the graph runs as a
	// BoundSession, adapters given as device tensors
	// (GenerateConfig.Resident) are bound in place, and the KV cache stays
	// on the device from step to step and, carried in RowCaches, from call
	// to call. Only token ids, masks, positions, roles, the sampler's
	// settings and uniforms, and the sampled tokens and log-probs cross
	// between Go and ONNX Runtime (the logits too where Go draws).
	Resident bool
}

// Decoder runs generation over one decoder graph.
type Decoder struct {
	spec DecoderSpec
	// sess runs with host tensors at every step; bound and dev replace it
	// when the decoder is resident (DecoderSpec.Resident).
	sess            *Session
	bound           *BoundSession
	dev             *Device
	inputs, outputs []IOInfo
	cacheDType      DType
	logits          IOInfo
	vocab           int64
	lastOnly        bool // logits hold the last position only: [batch, 1, vocab]
	// greedy is set when the graph outputs next_token and next_logprob
	// (dartc's decode.onnx): greedy steps then never fetch the logits.
	greedy bool
	// sampler is set when the graph samples in the graph too (decode.onnx's
	// sample_* inputs and outputs): sampled steps then never fetch the
	// logits either.
	sampler bool
	dynamic map[string]bool
	// pairs lists each cache input with the output that extends it
	// ({past key, present key}, {past value, present value} per layer), so
	// that a step walks the cache without rebuilding the pairs.
	pairs [][2]string
}

var hfPast = regexp.MustCompile(`^past_key_values\.(\d+)\.key$`)

// NewDecoder opens the decoder graph of spec.
func NewDecoder(spec DecoderSpec) (*Decoder, error) {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&spec.InputIDs, "input_ids")
	def(&spec.AttentionMask, "attention_mask")
	def(&spec.PositionIDs, "position_ids")
	def(&spec.Logits, "logits")
	d := &Decoder{spec: spec, dynamic: map[string]bool{}}
	if spec.Resident {
		dev, err := OpenDevice(spec.Options)
		if err != nil {
			return nil, err
		}
		if d.bound, err = NewBoundSession(spec.Path, dev, spec.Options); err != nil {
			dev.Close()
			return nil, err
		}
		d.dev, d.inputs, d.outputs = dev, d.bound.inputs, d.bound.outputs
	} else {
		sess, err := NewSession(spec.Path, spec.Options)
		if err != nil {
			return nil, err
		}
		d.sess, d.inputs, d.outputs = sess, sess.inputs, sess.outputs
	}
	if err := d.init(); err != nil {
		d.Destroy()
		return nil, fmt.Errorf("runtime: decoder %s: %w", spec.Path, err)
	}
	return d, nil
}

// input and output describe the graph's named input and output.
func (d *Decoder) input(name string) (IOInfo, bool)  { return find(d.inputs, name) }
func (d *Decoder) output(name string) (IOInfo, bool) { return find(d.outputs, name) }

// runTime is the wall time spent inside ONNX Runtime's runs so far.
func (d *Decoder) runTime() time.Duration {
	if d.bound != nil {
		return d.bound.RunTime()
	}
	return d.sess.RunTime()
}

func (d *Decoder) init() error {
	s := &d.spec
	if len(s.Cache) == 0 {
		s.Cache = findHFCache(d.inputs)
	}
	ids, ok := d.input(s.InputIDs)
	if !ok || ids.DType != Int64 {
		return fmt.Errorf("no int64 input %q (inputs: %s); set DecoderSpec.InputIDs", s.InputIDs, strings.Join(names(d.inputs), ", "))
	}
	d.dynamic[s.InputIDs] = true
	for _, name := range []string{s.AttentionMask, s.PositionIDs, s.RoleInput} {
		if name == "" {
			continue
		}
		io, ok := d.input(name)
		if !ok {
			if name == s.RoleInput {
				return fmt.Errorf("no role input %q", name)
			}
			continue
		}
		if io.DType != Int64 {
			return fmt.Errorf("input %v must be int64", io)
		}
		d.dynamic[name] = true
	}
	d.logits, ok = d.output(s.Logits)
	if !ok || len(d.logits.Dims) != 3 {
		return fmt.Errorf("no [batch, seq, vocab] output %q (outputs: %s); set DecoderSpec.Logits", s.Logits, strings.Join(names(d.outputs), ", "))
	}
	d.vocab = d.logits.Dims[2]
	if d.vocab < 0 {
		return fmt.Errorf("logits %v have a symbolic vocab dim", d.logits)
	}
	d.lastOnly = d.logits.Dims[1] == 1
	nt, ok1 := d.output(manifest.NextTokenOutput)
	nl, ok2 := d.output(manifest.NextLogprobOutput)
	d.greedy = d.lastOnly && ok1 && ok2 && nt.DType == Int64 && nl.DType == Float32
	if err := d.initSampler(); err != nil {
		return err
	}
	for i, c := range s.Cache {
		past, ok := d.input(c.PastKey)
		if !ok {
			return fmt.Errorf("cache layer %d: no input %q", i, c.PastKey)
		}
		for _, n := range []string{c.PastKey, c.PastValue} {
			io, ok := d.input(n)
			if !ok || len(io.Dims) != 4 || io.DType != past.DType {
				return fmt.Errorf("cache layer %d: want a 4-d %v input %q [batch, kv_heads, past, head_dim]", i, past.DType, n)
			}
			d.dynamic[n] = true
		}
		for _, n := range []string{c.PresentKey, c.PresentValue} {
			if _, ok := d.output(n); !ok {
				return fmt.Errorf("cache layer %d: no output %q", i, n)
			}
		}
		d.pairs = append(d.pairs, [2]string{c.PastKey, c.PresentKey}, [2]string{c.PastValue, c.PresentValue})
		d.cacheDType = past.DType
		if s.KVHeads == 0 {
			s.KVHeads = past.Dims[1]
		}
		if s.HeadDim == 0 {
			s.HeadDim = past.Dims[3]
		}
	}
	if len(s.Cache) > 0 && (s.KVHeads <= 0 || s.HeadDim <= 0) {
		return fmt.Errorf("cache dims are symbolic: set DecoderSpec.KVHeads and HeadDim")
	}
	return nil
}

func findHFCache(inputs []IOInfo) []manifest.CacheLayer {
	var layers []int
	for _, in := range inputs {
		if m := hfPast.FindStringSubmatch(in.Name); m != nil {
			n, _ := strconv.Atoi(m[1])
			layers = append(layers, n)
		}
	}
	sort.Ints(layers)
	var cache []manifest.CacheLayer
	for i, n := range layers {
		if n != i {
			return nil // a gap: not the convention, leave it to the caller
		}
		cache = append(cache, manifest.CacheLayer{
			PastKey: fmt.Sprintf("past_key_values.%d.key", n), PastValue: fmt.Sprintf("past_key_values.%d.value", n),
			PresentKey: fmt.Sprintf("present.%d.key", n), PresentValue: fmt.Sprintf("present.%d.value", n),
		})
	}
	return cache
}

// NewDecoderFromManifest opens decode.onnx of a directory written by
// `dartc compile`, with the names, cache layout, role input, context length
// and session config entries its manifest.json records.
func NewDecoderFromManifest(dir string, opts *Options) (*Decoder, error) {
	spec, err := ManifestDecoderSpec(dir, opts)
	if err != nil {
		return nil, err
	}
	return NewDecoder(spec)
}

// ManifestDecoderSpec is the DecoderSpec NewDecoderFromManifest opens, for
// callers that set more of it (Resident). Its options are opts with the
// graph's session settings added by ForGraph, the graph's entries winning.
func ManifestDecoderSpec(dir string, opts *Options) (DecoderSpec, error) {
	m, err := manifest.Read(dir)
	if err != nil {
		return DecoderSpec{}, fmt.Errorf("runtime: %w", err)
	}
	g := m.Graphs[manifest.GraphDecode]
	if g == nil {
		return DecoderSpec{}, fmt.Errorf("runtime: %s/%s lists no %q graph: recompile the model", dir, manifest.FileName, manifest.GraphDecode)
	}
	base := Options{}
	if opts != nil {
		base = *opts
	}
	// As every compiled graph is opened: a float64 decode.onnx needs its
	// disabled optimizers whatever the caller's config says.
	o, err := ForGraph(g, base)
	if err != nil {
		return DecoderSpec{}, err
	}
	return DecoderSpec{
		Path: filepath.Join(dir, g.File), Options: o,
		Cache: m.Model.Cache, KVHeads: m.Model.KVHeads, HeadDim: m.Model.HeadDim,
		RoleInput: m.LoRA.RoleInput, MaxLength: m.Model.MaxLength,
	}, nil
}

// Session returns the decoder's session (nil when it is resident).
func (d *Decoder) Session() *Session { return d.sess }

// Resident reports whether the decoder keeps its state on a device
// (DecoderSpec.Resident).
func (d *Decoder) Resident() bool { return d.bound != nil }

// Device returns a resident decoder's device (nil otherwise).
func (d *Decoder) Device() *Device { return d.dev }

// Spec returns the spec with its defaults and detected cache filled in.
func (d *Decoder) Spec() DecoderSpec { return d.spec }

// HasCache reports whether the graph carries a KV cache.
func (d *Decoder) HasCache() bool { return len(d.spec.Cache) > 0 }

// Vocab returns the logits' vocabulary size.
func (d *Decoder) Vocab() int64 { return d.vocab }

// StaticInputs lists the inputs Generate does not compute (adapters and
// the like), which GenerateConfig.Inputs must supply.
func (d *Decoder) StaticInputs() []IOInfo {
	var out []IOInfo
	for _, in := range d.inputs {
		if !d.dynamic[in.Name] {
			out = append(out, in)
		}
	}
	return out
}

// Destroy releases the session (and a resident decoder's device: destroy
// the device tensors made for it first).
func (d *Decoder) Destroy() error {
	if d.bound != nil {
		err := d.bound.Destroy()
		d.dev.Close()
		d.bound, d.dev = nil, nil
		return err
	}
	if d.sess == nil {
		return nil
	}
	return d.sess.Destroy()
}

// StopReason says why a row stopped generating.
type StopReason string

// Reasons a row stops.
const (
	StopToken   StopReason = "stop-token"  // a stop token id was sampled (it is kept)
	StopString  StopReason = "stop-string" // the decoded text reached a stop string
	StopLength  StopReason = "max-new-tokens"
	StopContext StopReason = "context" // the row filled the model's context
)

// GenerateConfig controls one Generate call.
type GenerateConfig struct {
	// MaxNewTokens bounds the tokens generated per row (required, > 0).
	MaxNewTokens int
	// MaxLength, when > 0, lowers the context for this call below the
	// model's (DecoderSpec.MaxLength; the smaller of the two applies): a row
	// whose prompt and generated tokens reach it stops with StopContext,
	// whatever the other rows do, and a prompt that fills it is refused
	// (ErrPromptTooLong). The agent loop's Config.MaxContext.
	MaxLength int
	// Sampling picks greedy (zero value) or sampled decoding.
	Sampling Sampling
	// Seed seeds every row's RNG: PCG(Seed, row).
	Seed uint64
	// RNGs, when set (one per prompt), replace the seeded RNGs: a caller
	// that generates a row over several calls continues its stream.
	RNGs []*rand.Rand
	// Force, when set, is asked before each draw of a live row with the
	// row's prompt and generated ids so far; when it returns ok the row
	// takes that token instead of drawing one (its log-probs are still the
	// policy's, from the logits). It scripts a policy for tests and for
	// teacher forcing. Called from the generation goroutine, rows in order.
	Force func(row int, tokens []int64) (token int64, ok bool)
	// OnToken, when set, is called with every generated token as soon as
	// it is drawn, rows in order within a step: streaming output.
	OnToken func(row int, token int64)
	// StopTokens end a row when sampled (e.g. EOS); the token is kept.
	StopTokens []int64
	// StopStrings end a row when its decoded generated text contains one;
	// Decode (required with StopStrings) turns generated ids into text.
	StopStrings []string
	Decode      func(tokens []int64) string
	// Roles gives the role id of the last position of tokens (the row's
	// prompt and generated ids so far); nil feeds role 0 everywhere.
	Roles func(row int, tokens []int64) int64
	// Agents > 1 makes each role its own agent (DART's two-agent upper
	// bound): every step runs the graph once per role with that role fed at
	// every position, so each agent encodes the whole context with its own
	// adapter in its own KV cache, and each row draws its next token from the
	// agent its Roles callback names for the current position. Log-probs are
	// that agent's.
	Agents int
	// PadToken fills left padding and the input of finished rows.
	PadToken int64
	// Inputs are fed unchanged at every step (the adapters). A resident
	// decoder uploads them once per call.
	Inputs map[string]*Tensor
	// Resident are inputs already on a resident decoder's device
	// (Decoder.UploadInputs, or a trainer's tensors on the same device):
	// bound in place at every step, so adapters cross to the device once
	// for the calls that share them, or never.
	Resident map[string]*DeviceTensor
	// KeepLastLogits stores each row's last-step logits in the Sequence.
	KeepLastLogits bool
	// NoCache recomputes the whole sequence at every step, without the KV
	// cache: the reference the cached path must match.
	NoCache bool
	// HostSampling draws sampled tokens in Go from the logits (the reference
	// sampler) even when decode.onnx samples in the graph.
	HostSampling bool
	// Cache, when set (one per prompt), carries each row's KV cache across
	// calls: the tokens a RowCache holds that begin the row's prompt are
	// not fed again, and on return it holds every token fed (the prompt and
	// the generated tokens but the last). A row's later call then costs only
	// its new tokens: the agent loop's observations. The adapters and the
	// number of agents must not change between the calls of a cache.
	Cache []*RowCache
}

// Sequence is one row's result.
type Sequence struct {
	Prompt []int64
	// Tokens are the generated ids, the stop token included.
	Tokens []int64
	// LogProbs[i] is log π(Tokens[i]): log_softmax of the raw logits at
	// temperature 1 without top-k/top-p truncation — the policy log-prob
	// GRPO's ratio uses.
	LogProbs []float64
	// Roles holds the role fed at each position, prompt first; the last
	// generated token is never fed, so len(Roles) = len(Prompt)+len(Tokens)-1.
	Roles      []int64
	Stop       StopReason
	StopString string // the stop string matched, for StopString
	// LastLogits are the raw logits the last token was drawn from, kept
	// only with GenerateConfig.KeepLastLogits.
	LastLogits []float64
}

// Stats time a Generate call.
type Stats struct {
	Steps int
	// Redraws counts the extra runs of a step whose in-graph proposals
	// were all rejected for some row.
	Redraws int
	// Prefill counts the prompt tokens fed by the first step, over the rows:
	// those not covered by a carried cache (GenerateConfig.Cache).
	Prefill int
	Total   time.Duration // wall time of the generation loop
	ORT     time.Duration // of which inside ONNX Runtime's Run
}

// GoShare is the fraction of the loop spent outside ONNX Runtime.
func (s Stats) GoShare() float64 {
	if s.Total <= 0 {
		return 0
	}
	return float64(s.Total-s.ORT) / float64(s.Total)
}

// ErrPromptTooLong is returned when a prompt leaves no room in the context.
var ErrPromptTooLong = errors.New("runtime: prompt too long")

type rowState struct {
	seq     []int64 // prompt and generated ids, unpadded
	done    bool
	textLen int // length of the decoded text at the last stop-string check
	// mask[c] is 1 where column c holds one of the row's tokens, 0 for
	// padding, the hole between a carried cache and the new tokens, and the
	// columns after the row is done; pos[c] is that token's position.
	mask, pos []int64
}

// Generate extends every prompt of the batch, left-padded to the longest.
func (d *Decoder) Generate(ctx context.Context, prompts [][]int64, cfg GenerateConfig) ([]Sequence, Stats, error) {
	if err := d.check(prompts, &cfg); err != nil {
		return nil, Stats{}, err
	}
	start, ort0 := time.Now(), d.runTime()
	B := len(prompts)
	rows := make([]rowState, B)
	out := make([]Sequence, B)
	rngs := make([]*rand.Rand, B)
	useCache := d.HasCache() && !cfg.NoCache
	carried := d.carriedLengths(prompts, &cfg, useCache)
	for i, p := range prompts {
		rows[i] = rowState{seq: append([]int64(nil), p...)}
		out[i].Prompt = append([]int64(nil), p...)
		if cfg.RNGs != nil {
			rngs[i] = cfg.RNGs[i]
		} else {
			rngs[i] = RowRNG(cfg.Seed, i)
		}
	}
	// Greedy steps take the argmax and its log-prob from the graph, and
	// sampled steps the graph's draw where it samples: no vocabulary-sized
	// tensor crosses into Go.
	mode := stepLogits
	if cfg.Force == nil && !cfg.KeepLastLogits {
		switch {
		case cfg.Sampling.Greedy() && d.greedy:
			mode = stepGreedy
		case !cfg.Sampling.Greedy() && d.sampler && !cfg.HostSampling:
			mode = stepSample
		}
	}
	// cols[i] holds row i's column sequence, roles[i] the role fed in each
	// column: the carried tokens right-aligned in the first C columns, the
	// new ones right-aligned in the next N.
	C, N := 0, 0
	for i, p := range prompts {
		C, N = max(C, carried[i]), max(N, len(p)-carried[i])
	}
	cols := make([][]int64, B)
	roles := make([][]int64, B)
	prefill := 0
	for i := range rows {
		r := &rows[i]
		n, fresh := carried[i], len(r.seq)-carried[i]
		prefill += fresh
		cols[i] = make([]int64, 0, C+N+cfg.MaxNewTokens)
		for c := 0; c < C+N; c++ {
			k := c - (C - n) // token index in the carried part
			if c >= C {
				k = n + c - (C + N - fresh)
			}
			if (c < C && k < 0) || (c >= C && k < n) {
				cols[i] = append(cols[i], cfg.PadToken)
				roles[i] = append(roles[i], 0)
				r.mask, r.pos = append(r.mask, 0), append(r.pos, 1) // padding, as Hugging Face fills it
				continue
			}
			cols[i] = append(cols[i], r.seq[k])
			roles[i] = append(roles[i], d.role(&cfg, i, *r, k))
			r.mask, r.pos = append(r.mask, 1), append(r.pos, int64(k))
		}
	}
	st, err := d.newSteps(&cfg, B, mode, useCache)
	if err != nil {
		return nil, Stats{}, err
	}
	defer st.close()
	if C > 0 {
		for k := range max(cfg.Agents, 1) {
			if err := st.carry(k, cfg.Cache, carried, C); err != nil {
				return nil, Stats{}, err
			}
		}
	}
	draws := make([]draw, B)
	force := make([]forced, B)
	pending, redraw := make([]bool, B), make([]bool, B)
	scratch := make([]drawScratch, max(1, min(B, goruntime.GOMAXPROCS(0))))
	steps, redraws := 0, 0
	for {
		if err := ctx.Err(); err != nil {
			return nil, Stats{}, fmt.Errorf("runtime: generate: %w", err)
		}
		total := len(cols[0])
		from := C // first column fed this step
		if useCache && steps > 0 {
			from = total - 1
		}
		feed := d.samplerFeed(&cfg, mode == stepSample, rows, rngs, nil)
		res, rerun, err := d.runStep(st, &cfg, cols, roles, rows, from, total, mode, feed)
		if err != nil {
			return nil, Stats{}, fmt.Errorf("runtime: generate step %d: %w", steps, err)
		}
		steps++
		lt := res[d.spec.Logits]
		if cfg.Force != nil {
			for i := range rows {
				if !rows[i].done {
					force[i].token, force[i].ok = cfg.Force(i, rows[i].seq)
				}
			}
		}
		switch mode {
		case stepGreedy:
			next, lp := res[manifest.NextTokenOutput].Int64(), res[manifest.NextLogprobOutput].Float32()
			for i := range rows {
				// The argmax's log-prob is finite for finite logits: NaN
				// or ±Inf means the logits are not (as sampling reports).
				if x := float64(lp[i]); !rows[i].done && (math.IsNaN(x) || math.IsInf(x, 0)) {
					return nil, Stats{}, fmt.Errorf("runtime: generate step %d, row %d: the logits are not finite (the greedy token's log-prob is %v): the model or its adapters have diverged, or their weights hold NaN", steps, i, x)
				}
				draws[i] = draw{token: next[i], logProb: float64(lp[i])}
			}
		case stepSample:
			// Rows whose proposals were all rejected draw again from the
			// same inputs with fresh numbers from their streams.
			for n, try := takeSamples(res, rows, draws, nil, pending), 0; n > 0; n = takeSamples(res, rows, draws, redraw, pending) {
				copy(redraw, pending)
				if try++; try > maxRedraws {
					return nil, Stats{}, redrawError(steps, pending, res)
				}
				redraws++
				if res, err = rerun(d.samplerFeed(&cfg, true, rows, rngs, redraw)); err != nil {
					return nil, Stats{}, fmt.Errorf("runtime: generate step %d, redraw: %w", steps, err)
				}
			}
		default:
			d.drawAll(&cfg, lt, rows, rngs, force, draws, scratch)
			for i := range rows {
				if !rows[i].done && draws[i].err != nil {
					return nil, Stats{}, fmt.Errorf("runtime: generate step %d, row %d: %w", steps, i, draws[i].err)
				}
			}
		}
		active := false
		for i := range rows {
			r := &rows[i]
			if r.done {
				continue
			}
			dr := draws[i]
			r.seq = append(r.seq, dr.token)
			o := &out[i]
			o.Tokens = append(o.Tokens, dr.token)
			o.LogProbs = append(o.LogProbs, dr.logProb)
			o.LastLogits = dr.logits
			if cfg.OnToken != nil {
				cfg.OnToken(i, dr.token)
			}
			d.finish(&cfg, r, o)
			active = active || !r.done
		}
		if !active {
			break
		}
		// Append the next column: the sampled token, or padding for rows
		// that are done (their outputs are ignored from now on).
		for i := range rows {
			r := &rows[i]
			next, role, m, p := cfg.PadToken, int64(0), int64(0), int64(1)
			if !r.done {
				k := len(r.seq) - 1
				next, role, m, p = r.seq[k], d.role(&cfg, i, *r, k), 1, int64(k)
			}
			cols[i] = append(cols[i], next)
			roles[i] = append(roles[i], role)
			r.mask, r.pos = append(r.mask, m), append(r.pos, p)
		}
	}
	for i := range out {
		r := &rows[i]
		out[i].Roles = make([]int64, 0, len(r.seq)-1)
		for c, m := range r.mask {
			if m == 1 {
				out[i].Roles = append(out[i].Roles, roles[i][c])
			}
		}
	}
	if cfg.Cache != nil && useCache {
		if err := st.keep(cfg.Cache, rows, max(cfg.Agents, 1)); err != nil {
			return nil, Stats{}, fmt.Errorf("runtime: generate: keep the cache: %w", err)
		}
	}
	return out, Stats{Steps: steps, Redraws: redraws, Prefill: prefill, Total: time.Since(start), ORT: d.runTime() - ort0}, nil
}

type draw struct {
	token   int64
	logProb float64
	logits  []float64 // with KeepLastLogits only
	err     error     // a host draw that could not be made
}

// forced marks a token chosen by GenerateConfig.Force for one row.
type forced struct {
	token int64
	ok    bool
}

// drawScratch holds one worker's buffers, reused across steps so that a
// decode step allocates nothing per row.
type drawScratch struct {
	f32     []float32
	sampler Sampler
}

// drawAll samples the next token of every live row from the last position
// of logits. Rows are independent (each has its own RNG), so they are
// spread over the CPUs, which sit idle while ONNX Runtime is not running;
// a lone live row splits its vocabulary instead. The results do not depend
// on the split.
func (d *Decoder) drawAll(cfg *GenerateConfig, logits *Tensor, rows []rowState, rngs []*rand.Rand, force []forced, draws []draw, scratch []drawScratch) {
	s, V := int(logits.shape[1]), int(d.vocab)
	live := 0
	for i := range rows {
		if !rows[i].done {
			live++
		}
	}
	if live == 1 || len(scratch) == 1 {
		for i := range rows {
			if !rows[i].done {
				draws[i] = d.drawRow(cfg, logits, (i*s+s-1)*V, rngs[i], force[i], &scratch[0], len(scratch))
			}
		}
		return
	}
	var wg sync.WaitGroup
	for w := range scratch {
		wg.Go(func() {
			for i := w; i < len(rows); i += len(scratch) {
				if !rows[i].done {
					draws[i] = d.drawRow(cfg, logits, (i*s+s-1)*V, rngs[i], force[i], &scratch[w], 1)
				}
			}
		})
	}
	wg.Wait()
}

// drawRow draws one row's token from the V logits at offset off. The
// policy log-prob is logit − log-sum-exp at temperature 1, computed in
// float32 (LogSumExp32); sampled draws come from the Sampler (Filter's
// distribution, without allocating).
func (d *Decoder) drawRow(cfg *GenerateConfig, logits *Tensor, off int, rng *rand.Rand, f forced, sc *drawScratch, split int) draw {
	V := int(d.vocab)
	var x []float32
	if logits.dtype == Float32 {
		x = logits.Float32()[off : off+V]
	} else {
		sc.f32 = logits.Float32sAt(sc.f32, off, V)
		x = sc.f32
	}
	lse, arg := logSumExpSplit(x, split)
	var dr draw
	switch {
	case f.ok:
		dr.token = f.token
	case cfg.Sampling.Greedy():
		dr.token = int64(arg)
	default:
		tok, err := sc.sampler.Draw(cfg.Sampling, x, rng)
		if err != nil {
			dr.err = err
			return dr
		}
		dr.token = int64(tok)
	}
	dr.logProb = float64(x[dr.token]) - lse
	if cfg.KeepLastLogits {
		dr.logits = widen(nil, x)
	}
	return dr
}

// widen converts x to float64 into dst, grown as needed.
func widen(dst []float64, x []float32) []float64 {
	if cap(dst) < len(x) {
		dst = make([]float64, len(x))
	}
	dst = dst[:len(x)]
	for i, v := range x {
		dst[i] = float64(v)
	}
	return dst
}

// role computes the role of token k of a row.
func (d *Decoder) role(cfg *GenerateConfig, row int, r rowState, k int) int64 {
	if cfg.Roles == nil {
		return 0
	}
	return cfg.Roles(row, r.seq[:k+1])
}

func (d *Decoder) finish(cfg *GenerateConfig, r *rowState, o *Sequence) {
	t := r.seq[len(r.seq)-1]
	for _, s := range cfg.StopTokens {
		if t == s {
			r.done, o.Stop = true, StopToken
			return
		}
	}
	if len(cfg.StopStrings) > 0 {
		text := cfg.Decode(o.Tokens)
		for _, s := range cfg.StopStrings {
			// Search only where a match can end in text new since the last
			// check, so a string split across tokens is found once.
			from := max(0, r.textLen-len(s)+1)
			if from < len(text) && strings.Contains(text[from:], s) {
				r.done, o.Stop, o.StopString = true, StopString, s
				return
			}
		}
		r.textLen = len(text)
	}
	if len(o.Tokens) >= cfg.MaxNewTokens {
		r.done, o.Stop = true, StopLength
		return
	}
	// check set cfg.MaxLength to the context in force (0: unlimited).
	if cfg.MaxLength > 0 && len(r.seq) >= cfg.MaxLength {
		r.done, o.Stop = true, StopContext
	}
}

func (d *Decoder) check(prompts [][]int64, cfg *GenerateConfig) error {
	if cfg.Agents > 1 && d.spec.RoleInput == "" {
		return fmt.Errorf("runtime: %d agents need a role input (a graph compiled by dartc)", cfg.Agents)
	}
	if len(prompts) == 0 {
		return fmt.Errorf("runtime: generate: no prompts")
	}
	if cfg.MaxNewTokens <= 0 {
		return fmt.Errorf("runtime: generate: MaxNewTokens must be > 0, got %d", cfg.MaxNewTokens)
	}
	if err := cfg.Sampling.Validate(); err != nil {
		return err
	}
	if cfg.RNGs != nil && len(cfg.RNGs) != len(prompts) {
		return fmt.Errorf("runtime: generate: %d RNGs for %d prompts: give one per prompt or none", len(cfg.RNGs), len(prompts))
	}
	if cfg.Cache != nil && len(cfg.Cache) != len(prompts) {
		return fmt.Errorf("runtime: generate: %d caches in GenerateConfig.Cache for %d prompts: give one per prompt (a nil entry carries nothing) or none", len(cfg.Cache), len(prompts))
	}
	if cfg.MaxLength < 0 {
		return fmt.Errorf("runtime: generate: MaxLength must be ≥ 0 (0: the model's context), got %d", cfg.MaxLength)
	}
	// From here on cfg.MaxLength is the context in force: the call's or the
	// model's, whichever is smaller (0: unlimited).
	limit := "the model's context"
	if m := int(d.spec.MaxLength); m > 0 && (cfg.MaxLength == 0 || cfg.MaxLength >= m) {
		cfg.MaxLength = m
	} else if cfg.MaxLength > 0 {
		limit = "the context (GenerateConfig.MaxLength)"
	}
	if len(cfg.StopStrings) > 0 && cfg.Decode == nil {
		return fmt.Errorf("runtime: generate: stop strings need a Decode function to turn ids into text")
	}
	for i, p := range prompts {
		if len(p) == 0 {
			return fmt.Errorf("runtime: generate: prompt %d is empty", i)
		}
		if cfg.MaxLength > 0 && len(p) >= cfg.MaxLength {
			return fmt.Errorf("%w: prompt %d has %d tokens, %s is %d tokens, leaving no room to generate: shorten the prompt",
				ErrPromptTooLong, i, len(p), limit, cfg.MaxLength)
		}
		for j, t := range p {
			if t < 0 || t >= d.vocab {
				return fmt.Errorf("runtime: generate: prompt %d token %d is id %d, outside the vocabulary [0, %d)", i, j, t, d.vocab)
			}
		}
	}
	var missing []string
	for _, in := range d.StaticInputs() {
		if cfg.Inputs[in.Name] == nil && cfg.Resident[in.Name] == nil {
			missing = append(missing, in.String())
			continue
		}
		if t := cfg.Resident[in.Name]; t != nil {
			if err := checkShape(in, t.DType(), t.Shape(), nil); err != nil {
				return fmt.Errorf("runtime: generate: resident input: %w", err)
			}
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("runtime: generate: the graph needs inputs that generation does not compute: %s; pass them in GenerateConfig.Inputs (adapters: load adapters.safetensors, or zeros for the base model)",
			strings.Join(missing, "; "))
	}
	for name := range cfg.Resident {
		if _, ok := d.input(name); !ok || d.dynamic[name] {
			return fmt.Errorf("runtime: generate: resident input %q is not one of the graph's fixed inputs (%s)", name, ioNames(d.StaticInputs()))
		}
	}
	for name := range cfg.Inputs {
		if d.dynamic[name] {
			return fmt.Errorf("runtime: generate: input %q is computed by generation and cannot be given in GenerateConfig.Inputs", name)
		}
	}
	return nil
}

// stepInputs builds the small inputs of a step over columns [from, total):
// ids, the mask, positions, roles and the sampler's feed.
func (d *Decoder) stepInputs(cfg *GenerateConfig, cols, roles [][]int64, rows []rowState, from, total int, feed map[string]*Tensor) map[string]*Tensor {
	B, s := int64(len(cols)), int64(total-from)
	in := make(map[string]*Tensor, len(d.inputs))
	for k, v := range feed {
		in[k] = v
	}
	ids := NewTensor(Int64, B, s)
	idv := ids.Int64()
	for i := range cols {
		copy(idv[int64(i)*s:], cols[i][from:total])
	}
	in[d.spec.InputIDs] = ids
	if d.dynamic[d.spec.AttentionMask] {
		mask := NewTensor(Int64, B, int64(total))
		mv := mask.Int64()
		for i := range cols {
			copy(mv[i*total:], rows[i].mask[:total])
		}
		in[d.spec.AttentionMask] = mask
	}
	if d.dynamic[d.spec.PositionIDs] {
		pos := NewTensor(Int64, B, s)
		pv := pos.Int64()
		for i := range cols {
			copy(pv[int64(i)*s:], rows[i].pos[from:total])
		}
		in[d.spec.PositionIDs] = pos
	}
	if d.spec.RoleInput != "" {
		rt := NewTensor(Int64, B, s)
		rv := rt.Int64()
		for i := range cols {
			copy(rv[int64(i)*s:], roles[i][from:total])
		}
		in[d.spec.RoleInput] = rt
	}
	return in
}

// stepMode says what a step fetches.
type stepMode int

const (
	stepLogits stepMode = iota // the logits, drawn from in Go
	stepGreedy                 // the graph's argmax and its log-prob
	stepSample                 // the graph's sampled token and its log-prob
)

// runStep runs one step once per agent (with several agents, role k fed at
// every position of agent k, each in its own cache) and returns, per row,
// the outputs of the agent that owns the row's next token: logits rows,
// or the graph's draws. The returned function reruns the step's draws
// with another sampler feed.
func (d *Decoder) runStep(st steps, cfg *GenerateConfig, cols, roles [][]int64, rows []rowState, from, total int, mode stepMode, feed map[string]*Tensor) (map[string]*Tensor, func(map[string]*Tensor) (map[string]*Tensor, error), error) {
	B := len(cols)
	small := d.stepInputs(cfg, cols, roles, rows, from, total, feed)
	if cfg.Agents <= 1 {
		res, err := st.step(0, small, mode)
		return res, func(feed map[string]*Tensor) (map[string]*Tensor, error) { return st.rerun(0, feed) }, err
	}
	results := make([]map[string]*Tensor, cfg.Agents)
	for k := range results {
		in := make(map[string]*Tensor, len(small))
		for n, v := range small {
			in[n] = v
		}
		rt := NewTensor(Int64, int64(B), int64(total-from))
		for i := range rt.Int64() {
			rt.Int64()[i] = int64(k)
		}
		in[d.spec.RoleInput] = rt
		res, err := st.step(k, in, mode)
		if err != nil {
			return nil, nil, fmt.Errorf("agent %d: %w", k, err)
		}
		results[k] = res
	}
	owner := func(i int) int {
		r := int(roles[i][total-1])
		if r < 0 || r >= cfg.Agents {
			return 0
		}
		return r
	}
	rerun := func(feed map[string]*Tensor) (map[string]*Tensor, error) {
		res := make([]map[string]*Tensor, cfg.Agents)
		for k := range res {
			r, err := st.rerun(k, feed)
			if err != nil {
				return nil, fmt.Errorf("agent %d: %w", k, err)
			}
			res[k] = r
		}
		return pickRows(res, B, owner, manifest.SampleTokenOutput, manifest.SampleLogprobOutput, manifest.SampleAcceptedOutput), nil
	}
	switch mode {
	case stepGreedy:
		return pickRows(results, B, owner, manifest.NextTokenOutput, manifest.NextLogprobOutput), rerun, nil
	case stepSample:
		return pickRows(results, B, owner, manifest.SampleTokenOutput, manifest.SampleLogprobOutput, manifest.SampleAcceptedOutput), rerun, nil
	}
	return pickRows(results, B, owner, d.spec.Logits), rerun, nil
}

// pickRows assembles the named [batch, …] outputs taking row i from the
// results of agent owner(i).
func pickRows(results []map[string]*Tensor, B int, owner func(int) int, names ...string) map[string]*Tensor {
	out := map[string]*Tensor{}
	for _, n := range names {
		first := results[0][n]
		t := NewTensor(first.dtype, first.shape...)
		row := len(first.bytes) / B
		for i := 0; i < B; i++ {
			copy(t.bytes[i*row:(i+1)*row], results[owner(i)][n].bytes[i*row:(i+1)*row])
		}
		out[n] = t
	}
	return out
}

// outputNames lists the outputs a step asks for: those it pre-allocated.
func outputNames(out map[string]*Tensor) []string {
	names := make([]string, 0, len(out))
	for n := range out {
		names = append(names, n)
	}
	return names
}
