package agent

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/models/prompt"
	"github.com/dartc/dartc/models/tokenizer"
	"github.com/dartc/dartc/qa"
	"github.com/dartc/dartc/retrieval"
	"github.com/dartc/dartc/router"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/trajectory"
)

// Stop reasons of a trajectory (trajectory.Trajectory.Stop).
const (
	StopAnswer    = "answer"     // the response holds an <answer>
	StopEOS       = "eos"        // the final turn ended with EOS, no answer
	StopMaxTurns  = "max_turns"  // the final turn ended at a stop string, no answer
	StopMaxTokens = "max_tokens" // the final turn hit MaxTurnTokens
	StopContext   = "context"    // the rollout filled the context
)

// Search-R1's defaults (reference/search-r1-grpo-peft.md §1.3–1.4).
const (
	DefaultMaxTurns      = 4
	DefaultMaxTurnTokens = 500
	DefaultMaxObsTokens  = 500
	DefaultTopK          = 3
)

// Config sets up an Agent. Zero values take the defaults named.
type Config struct {
	// Model is a directory written by `dartc compile` (decode.onnx and
	// manifest.json are used).
	Model string
	// Tokenizer is the Qwen2 tokenizer directory ("": tokenizer.DefaultDir).
	Tokenizer string
	// Adapters is an adapters.safetensors file ("": zeros, the base model).
	// SetAdapters replaces them later.
	Adapters string
	// Session configures ONNX Runtime (nil: CPU defaults).
	Session *runtime.Options
	// Searcher answers the queries (nil: every search returns no passage).
	Searcher retrieval.Searcher
	TopK     int // passages per search [3]
	// MaxTurns is the number of turns that may search [4]; one final turn
	// without search follows. Negative means none: a single final turn.
	MaxTurns      int
	MaxTurnTokens int // tokens generated per turn [500]
	MaxObsTokens  int // tokens kept of an observation [500]
	// MaxContext bounds a rollout's tokens (0: the manifest's max_length,
	// unlimited when it has none). It may lower the model's context, not
	// raise it: New refuses a value above max_length. Each row stops at it
	// by itself (StopContext); the other rows' turns go on.
	MaxContext int
	Sampling   runtime.Sampling
	// System is the system message ("": prompt.DefaultSystem).
	System string
	// Stream, when set, receives the bytes of every token as it enters a
	// row's response (generated or inserted), special tokens left out.
	Stream func(row int, text []byte)
	// Force, when set, scripts the policy: asked before each draw of a row
	// (numbered as in Run's result) with the row's tokens so far, it may
	// return the token to take. Log-probs stay the model's. For tests.
	Force func(row int, tokens []int64) (token int64, ok bool)
	// TwoAgent samples as DART's two-agent setting: each role is an agent
	// that encodes the whole context with its own adapter, in its own KV
	// cache, and each token is drawn from the agent of its role (the graph
	// runs once per role per step).
	TwoAgent bool
	// Reprefill runs the prefill of the whole context at every turn instead
	// of carrying each rollout's KV cache from turn to turn (where a turn
	// feeds only the tokens added since the last: the observation): the
	// reference the carried cache must match.
	Reprefill bool
	// HostTensors feeds the adapters and the KV cache to ONNX Runtime as
	// Go tensors at every step, the reference for the default: the
	// adapters bound once on the execution device (Session.Device, the
	// CPU by default) and the cache kept there between steps and turns.
	HostTensors bool
}

// Question is one example to roll out.
type Question struct {
	ID       string
	Question string
	Golden   []string
}

// Stats sum up the generation of one Run.
type Stats struct {
	Generated int            // policy tokens
	Prefill   int            // tokens fed by the turns' prefills (prompts, observations)
	Searches  int            // queries sent
	Decode    runtime.Stats  // summed over turns
	Turns     int            // generation calls (turns of the batch)
	PerStop   map[string]int // rollouts by stop reason
}

// Agent holds the model, the tokenizer and the adapters. It is not safe
// for concurrent use: one Run at a time.
type Agent struct {
	cfg      Config
	dec      *runtime.Decoder
	tok      *tokenizer.Tokenizer
	tags     router.Tags
	eos      []int64
	pad      int64
	special  map[int64]bool
	adapters map[string]*runtime.Tensor
	// resident holds the adapters on a resident decoder's device, uploaded
	// once per SetAdapters (owned) or lent by UseResidentAdapters.
	resident map[string]*runtime.DeviceTensor
	borrowed bool
	maxCtx   int
	agents   int // > 1 with TwoAgent: the number of roles
	last     Stats
}

// ErrPromptTooLong is returned when a question's prompt fills the context.
var ErrPromptTooLong = runtime.ErrPromptTooLong

// New opens the compiled model and the tokenizer.
func New(cfg Config) (*Agent, error) {
	if cfg.Model == "" {
		return nil, fmt.Errorf("agent: no model directory: pass the output directory of `dartc compile`")
	}
	m, err := manifest.Read(cfg.Model)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&cfg.TopK, DefaultTopK)
	def(&cfg.MaxTurns, DefaultMaxTurns)
	def(&cfg.MaxTurnTokens, DefaultMaxTurnTokens)
	def(&cfg.MaxObsTokens, DefaultMaxObsTokens)
	if cfg.MaxTurns < 0 {
		cfg.MaxTurns = 0
	}
	if cfg.System == "" {
		cfg.System = prompt.DefaultSystem
	}
	if err := cfg.Sampling.Validate(); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if cfg.Tokenizer, err = TokenizerDir(cfg.Model, m, cfg.Tokenizer); err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(cfg.Tokenizer)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a := &Agent{cfg: cfg, tok: tok, special: map[int64]bool{}}
	if cfg.TwoAgent {
		if len(m.LoRA.Roles) < 2 {
			return nil, fmt.Errorf("agent: two agents need two roles; %s was compiled with %v", cfg.Model, m.LoRA.Roles)
		}
		a.agents = len(m.LoRA.Roles)
	}
	// The ChatML markers must be single added tokens, as in Qwen2's files.
	for _, name := range []string{prompt.IMStart, prompt.IMEnd} {
		if _, err := tok.SpecialID(name); err != nil {
			return nil, fmt.Errorf("agent: tokenizer %s cannot write the ChatML prompt: %w", cfg.Tokenizer, err)
		}
	}
	for id := range tok.AddedTokens() {
		a.special[int64(id)] = true
	}
	for _, id := range tok.EOSIDs() {
		a.eos = append(a.eos, int64(id))
	}
	if len(a.eos) == 0 {
		return nil, fmt.Errorf("agent: tokenizer %s names no EOS token (eos_token in tokenizer_config.json)", cfg.Tokenizer)
	}
	a.pad = a.eos[len(a.eos)-1]
	if id, err := tok.SpecialID("<|endoftext|>"); err == nil {
		a.pad = int64(id)
	}
	a.tags = router.Tags{Open: m.Tags.ToolOpen, Close: m.Tags.ToolClose}
	if a.tags.Open == "" || a.tags.Close == "" {
		a.tags = router.SearchR1
	}
	// A context past the model's would let an observation take a row past
	// max_length, and the next turn's Generate would then refuse the batch.
	switch limit := int(m.Model.MaxLength); {
	case cfg.MaxContext < 0:
		return nil, fmt.Errorf("agent: MaxContext %d must be ≥ 0 (0: the model's context, %s max_length)", cfg.MaxContext, manifest.FileName)
	case limit > 0 && cfg.MaxContext > limit:
		return nil, fmt.Errorf("agent: MaxContext %d exceeds the model's context: %s/%s has max_length %d; set at most %d (0 takes max_length)",
			cfg.MaxContext, cfg.Model, manifest.FileName, limit, limit)
	case cfg.MaxContext > 0:
		a.maxCtx = cfg.MaxContext
	default:
		a.maxCtx = limit
	}
	spec, err := runtime.ManifestDecoderSpec(cfg.Model, cfg.Session)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	spec.Resident = !cfg.HostTensors
	if a.dec, err = runtime.NewDecoder(spec); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if int(a.dec.Vocab()) < tok.VocabSize() {
		a.dec.Destroy()
		return nil, fmt.Errorf("agent: the model's vocabulary has %d ids but tokenizer %s has %d: they do not belong together", a.dec.Vocab(), cfg.Tokenizer, tok.VocabSize())
	}
	if cfg.Adapters == "" {
		a.adapters, err = ZeroAdapters(a.dec.StaticInputs())
	} else {
		a.adapters, err = LoadAdapters(cfg.Adapters, a.dec.StaticInputs())
	}
	if err == nil {
		err = a.SetAdapters(a.adapters)
	}
	if err != nil {
		a.dec.Destroy()
		return nil, err
	}
	return a, nil
}

// TokenizerDir resolves the tokenizer of the compiled model in dir: the
// one recorded in its manifest (copied there by `dartc compile`), else
// tokenizer.DefaultDir. A given directory must hold the recorded tokenizer.
func TokenizerDir(dir string, m *manifest.Manifest, given string) (string, error) {
	if m.Tokenizer == nil {
		if given != "" {
			return given, nil
		}
		d, err := tokenizer.DefaultDir()
		if err != nil {
			return "", fmt.Errorf("agent: %w", err)
		}
		return d, nil
	}
	if given == "" {
		return filepath.Join(dir, m.Tokenizer.Dir), nil
	}
	sum, err := tokenizer.Digest(given)
	if err != nil {
		return "", fmt.Errorf("agent: %w", err)
	}
	if sum != m.Tokenizer.SHA256 {
		return "", fmt.Errorf("agent: tokenizer %s is not the one %s was compiled with (%s, sha256 %.12s, this one %.12s): leave --tokenizer out to use the model's own",
			given, dir, m.Tokenizer.Source, m.Tokenizer.SHA256, sum)
	}
	return given, nil
}

// Close releases the model.
func (a *Agent) Close() error {
	a.freeResident()
	return a.dec.Destroy()
}

func (a *Agent) freeResident() {
	if !a.borrowed {
		for _, t := range a.resident {
			t.Destroy()
		}
	}
	a.resident, a.borrowed = nil, false
}

// UseResidentAdapters makes the next runs bind adapters that already live
// on the execution device (a GRPO trainer's, grpo.ResidentRoller), so
// that no adapter crosses between Go and ONNX Runtime. The agent borrows
// them: the caller keeps them alive and unchanged while Run runs, and
// destroys them. Adapters still returns the tensors of the last
// SetAdapters; SetAdapters replaces these.
func (a *Agent) UseResidentAdapters(t map[string]*runtime.DeviceTensor) error {
	if !a.dec.Resident() {
		return fmt.Errorf("agent: resident adapters: the agent feeds host tensors (Config.HostTensors)")
	}
	for _, in := range a.dec.StaticInputs() {
		d := t[in.Name]
		if d == nil {
			return fmt.Errorf("agent: resident adapters: no tensor for input %v", in)
		}
		if d.DType() != in.DType || fmt.Sprint(d.Shape()) != fmt.Sprint(in.Dims) {
			return fmt.Errorf("agent: resident adapters: %s does not fit input %v", d, in)
		}
	}
	a.freeResident()
	a.resident, a.borrowed = t, true
	return nil
}

// Tokenizer returns the agent's tokenizer.
func (a *Agent) Tokenizer() *tokenizer.Tokenizer { return a.tok }

// Decoder returns the agent's decoder.
func (a *Agent) Decoder() *runtime.Decoder { return a.dec }

// Adapters returns the adapter tensors fed to decode.onnx.
func (a *Agent) Adapters() map[string]*runtime.Tensor { return a.adapters }

// SetAdapters replaces the adapter tensors (after a training step); every
// adapter input must be present.
func (a *Agent) SetAdapters(t map[string]*runtime.Tensor) error {
	for _, in := range a.dec.StaticInputs() {
		if t[in.Name] == nil {
			return fmt.Errorf("agent: set adapters: no tensor for input %v", in)
		}
	}
	if a.dec.Resident() {
		dev, err := a.dec.UploadInputs(t)
		if err != nil {
			return fmt.Errorf("agent: set adapters: %w", err)
		}
		a.freeResident()
		a.resident = dev
	}
	a.adapters = t
	return nil
}

// LastStats returns the statistics of the last Run.
func (a *Agent) LastStats() Stats { return a.last }

// PromptIDs returns the token ids of a question's prompt.
func (a *Agent) PromptIDs(question string) []int64 {
	return int64s(a.tok.EncodeWithSpecial(prompt.SearchR1Chat(question, a.cfg.System)))
}

// MaxContext is the context in tokens that prompts and rollouts are kept
// within (Config.MaxContext, else the manifest's max_length); 0: unbounded.
func (a *Agent) MaxContext() int { return a.maxCtx }

// CheckPrompts refuses, before any rollout, a question whose prompt leaves
// no room in the context (Run would refuse it when its batch comes). The
// error names the question and how long its prompt is.
func (a *Agent) CheckPrompts(questions []Question) error {
	if a.maxCtx <= 0 {
		return nil
	}
	// Byte-level BPE gives a question at most one token per byte: skip
	// tokenizing those that cannot reach the limit.
	template := len(a.PromptIDs(""))
	for qi := range questions {
		q := &questions[qi]
		if template+len(q.Question) < a.maxCtx {
			continue
		}
		if p := a.PromptIDs(q.Question); len(p) >= a.maxCtx {
			from := "manifest.json max_length"
			if a.cfg.MaxContext > 0 {
				from = "the agent's MaxContext"
			}
			return fmt.Errorf("%w: question %d (id %q, %d bytes) makes a %d-token prompt, the context is %d tokens (%s): shorten or drop it",
				ErrPromptTooLong, qi+1, q.ID, len(q.Question), len(p), a.maxCtx, from)
		}
	}
	return nil
}

// row is one rollout in progress.
type row struct {
	q         *Question
	tokens    []int64
	generated []bool    // generated[t]: the policy sampled tokens[t]
	logProbs  []float64 // logProbs[t]: log π(tokens[t]) where generated
	roles     []int64   // roles[t], one per token pushed to the router
	router    *router.Router
	rng       *rand.Rand
	turnStart int // tokens before the current turn
	searches  []string
	turns     int
	done      bool
	stop      string
	promptLen int
	cache     *runtime.RowCache // the KV cache carried from turn to turn
	index     int               // the row's number in Run's result
	written   strings.Builder   // the text of the row's turns, observations left out
}

// push feeds tokens[len(roles)] to the router and records its role.
func (r *row) push() {
	t := len(r.roles)
	r.roles = append(r.roles, int64(r.router.Push(int(r.tokens[t]), r.generated[t])))
}

// insert appends environment tokens (observations, cut tails).
func (r *row) insert(ids []int64) {
	for _, id := range ids {
		r.tokens = append(r.tokens, id)
		r.generated = append(r.generated, false)
		r.logProbs = append(r.logProbs, 0)
	}
}

// Run rolls out every question group times (rows question-major: question
// i's rollouts are rows i·group … i·group+group−1) and returns one
// trajectory per row. Row r draws from runtime.RowRNG(seed, r).
func (a *Agent) Run(ctx context.Context, questions []Question, group int, seed uint64) ([]*trajectory.Trajectory, error) {
	if len(questions) == 0 {
		return nil, fmt.Errorf("agent: run: no questions")
	}
	if group < 1 {
		return nil, fmt.Errorf("agent: run: group size %d must be ≥ 1", group)
	}
	a.last = Stats{PerStop: map[string]int{}}
	rows := make([]*row, 0, len(questions)*group)
	// The rows' caches may hold device memory: free it when the rollouts
	// end, whichever way.
	defer func() {
		for _, r := range rows {
			r.cache.Reset()
		}
	}()
	for qi := range questions {
		p := a.PromptIDs(questions[qi].Question)
		if a.maxCtx > 0 && len(p) >= a.maxCtx {
			return nil, fmt.Errorf("%w: question %d (%q) makes a %d-token prompt, the context is %d tokens: shorten the question or raise the context",
				ErrPromptTooLong, qi, questions[qi].ID, len(p), a.maxCtx)
		}
		for range group {
			r := &row{index: len(rows), q: &questions[qi], router: router.New(a.tok, a.tags), rng: runtime.RowRNG(seed, len(rows)), promptLen: len(p), cache: &runtime.RowCache{}}
			r.insert(p)
			rows = append(rows, r)
		}
	}
	for turn := 0; ; turn++ {
		var live []int
		for i, r := range rows {
			if !r.done {
				live = append(live, i)
			}
		}
		if len(live) == 0 {
			break
		}
		if err := a.turn(ctx, rows, live, turn == a.cfg.MaxTurns); err != nil {
			return nil, err
		}
	}
	out := make([]*trajectory.Trajectory, len(rows))
	for i, r := range rows {
		out[i] = a.trajectory(r)
		a.last.PerStop[r.stop]++
	}
	return out, nil
}

// turn runs one generation over the live rows and applies its actions.
func (a *Agent) turn(ctx context.Context, rows []*row, live []int, final bool) error {
	prompts := make([][]int64, len(live))
	rngs := make([]*rand.Rand, len(live))
	caches := make([]*runtime.RowCache, len(live))
	for k, i := range live {
		r := rows[i]
		// Tokens inserted since the last turn enter the router now, as
		// the prefill feeds them.
		r.turnStart = len(r.tokens)
		prompts[k], rngs[k], caches[k] = r.tokens, r.rng, r.cache
	}
	// The context is enforced per row (MaxLength), so that a row near it
	// does not cut the other rows' turns short.
	cfg := runtime.GenerateConfig{
		MaxNewTokens: a.cfg.MaxTurnTokens, MaxLength: a.maxCtx, Sampling: a.cfg.Sampling, RNGs: rngs,
		StopTokens: a.eos, StopStrings: prompt.StopStrings, Decode: a.text,
		PadToken: a.pad, Agents: a.agents,
		Roles: func(k int, tokens []int64) int64 {
			r := rows[live[k]]
			for len(r.roles) < len(tokens) {
				t := len(r.roles)
				if t >= len(r.tokens) { // a token of this turn, just drawn
					r.tokens = append(r.tokens, tokens[t])
					r.generated = append(r.generated, true)
					r.logProbs = append(r.logProbs, 0) // set when the turn ends
				}
				r.push()
			}
			return r.roles[len(tokens)-1]
		},
	}
	if a.resident != nil {
		cfg.Resident = a.resident
	} else {
		cfg.Inputs = a.adapters
	}
	if !a.cfg.Reprefill {
		cfg.Cache = caches
	}
	if a.cfg.Force != nil {
		cfg.Force = func(k int, tokens []int64) (int64, bool) { return a.cfg.Force(live[k], tokens) }
	}
	if a.cfg.Stream != nil {
		// Stream each token's bytes, except those past a stop string: the
		// turn is cut there (absorb), so they never reach the response.
		streamed := make([]string, len(live))
		cfg.OnToken = func(k int, id int64) {
			if a.special[id] {
				return
			}
			text := streamed[k] + string(a.tok.TokenBytes(int(id)))
			cut, _ := prompt.CutResponse(text)
			if len(cut) > len(streamed[k]) {
				a.cfg.Stream(live[k], []byte(cut[len(streamed[k]):]))
			}
			streamed[k] = text
		}
	}
	seqs, st, err := a.dec.Generate(ctx, prompts, cfg)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	a.last.Turns++
	a.last.Prefill += st.Prefill
	a.last.Decode.Steps += st.Steps
	a.last.Decode.Redraws += st.Redraws
	a.last.Decode.Prefill += st.Prefill
	a.last.Decode.Total += st.Total
	a.last.Decode.ORT += st.ORT
	var queries []string
	var searching []*row
	for k, i := range live {
		r, s := rows[i], seqs[k]
		r.turns++
		a.last.Generated += len(s.Tokens)
		a.absorb(r, s)
		text := a.text(r.tokens[r.turnStart:])
		r.written.WriteString(text)
		act, ok := prompt.ParseAction(text)
		switch {
		case ok && act.Kind == "answer":
			r.done, r.stop = true, StopAnswer
		case s.Stop == runtime.StopContext || (a.maxCtx > 0 && len(r.tokens) >= a.maxCtx):
			r.done, r.stop = true, StopContext
		case final:
			r.done = true
			switch s.Stop {
			case runtime.StopToken:
				r.stop = StopEOS
			case runtime.StopLength:
				r.stop = StopMaxTokens
			default:
				r.stop = StopMaxTurns
			}
		case ok && act.Kind == "search":
			r.searches = append(r.searches, act.Content)
			queries = append(queries, capQuery(act.Content))
			searching = append(searching, r)
		default:
			a.observe(r, prompt.InvalidAction)
		}
	}
	if len(queries) == 0 {
		return nil
	}
	a.last.Searches += len(queries)
	results := make([][]retrieval.Passage, len(queries))
	if a.cfg.Searcher != nil {
		if results, err = a.cfg.Searcher.Search(ctx, queries, a.cfg.TopK); err != nil {
			return fmt.Errorf("agent: search: %w", err)
		}
		if len(results) != len(queries) {
			return fmt.Errorf("agent: search: %d results for %d queries", len(results), len(queries))
		}
	}
	for j, r := range searching {
		a.observe(r, prompt.Observation(retrieval.FormatObservation(results[j])))
	}
	return nil
}

// absorb records a turn's sampled tokens and log-probs in the row, cutting
// a last token that carries bytes past the turn's stop string.
func (a *Agent) absorb(r *row, s runtime.Sequence) {
	// The Roles callback appended every fed token; the last one drawn was
	// never fed.
	for len(r.tokens) < r.turnStart+len(s.Tokens) {
		r.tokens = append(r.tokens, s.Tokens[len(r.tokens)-r.turnStart])
		r.generated = append(r.generated, true)
		r.logProbs = append(r.logProbs, 0)
	}
	for j, lp := range s.LogProbs {
		r.logProbs[r.turnStart+j] = lp
	}
	if s.Stop != runtime.StopString {
		return
	}
	text := a.text(s.Tokens)
	cut, _ := prompt.CutResponse(text)
	if len(cut) == len(text) {
		return
	}
	// Generation stopped at the first token completing a stop string, so
	// the cut lies inside the last token: replace it by the encoding of its
	// bytes up to the cut, inserted by the environment.
	last := len(r.tokens) - 1
	head := len(a.text(s.Tokens[:len(s.Tokens)-1]))
	r.tokens, r.generated, r.logProbs = r.tokens[:last], r.generated[:last], r.logProbs[:last]
	if len(r.roles) > last {
		r.roles = r.roles[:last]
	}
	r.insert(int64s(a.tok.Encode(cut[head:])))
}

// observe appends an observation, truncated to MaxObsTokens tokens as
// Search-R1 truncates it, unless it would fill the context.
func (a *Agent) observe(r *row, obs string) {
	ids := int64s(a.tok.Encode(obs))
	if len(ids) > a.cfg.MaxObsTokens {
		ids = ids[:a.cfg.MaxObsTokens]
	}
	if a.maxCtx > 0 && len(r.tokens)+len(ids) >= a.maxCtx {
		r.done, r.stop = true, StopContext
		return
	}
	r.insert(ids)
	if a.cfg.Stream != nil {
		a.cfg.Stream(r.index, []byte(a.text(ids)))
	}
}

// trajectory turns a finished row into the shared record.
func (a *Agent) trajectory(r *row) *trajectory.Trajectory {
	for len(r.roles) < len(r.tokens) {
		r.push()
	}
	n := len(r.tokens)
	t := &trajectory.Trajectory{
		ID: r.q.ID, Question: r.q.Question, Golden: r.q.Golden,
		Tokens: r.tokens, PromptLen: r.promptLen, Roles: r.roles,
		Policy: make([]bool, n), LogProbs: make([]float64, n),
		Searches: r.searches, Stop: r.stop, Turns: r.turns,
	}
	for i := 0; i+1 < n; i++ {
		t.Policy[i] = r.generated[i+1]
		t.LogProbs[i] = r.logProbs[i+1]
	}
	t.Response = a.text(r.tokens[r.promptLen:])
	// The answer is taken from what the policy wrote: the invalid-action
	// message quotes "<answer> and </answer>", which Search-R1's scorer
	// (last match in the decoded text) would otherwise take as the answer.
	t.Answer, _ = qa.ExtractAnswer(r.written.String())
	return t
}

// text decodes ids without the special tokens (skip_special_tokens) and
// without the ids the tokenizer does not know (a model's vocabulary is
// padded past the tokenizer's).
func (a *Agent) text(ids []int64) string {
	var b strings.Builder
	for _, id := range ids {
		if !a.special[id] {
			b.Write(a.tok.TokenBytes(int(id)))
		}
	}
	return b.String()
}

// Generated returns the row's generated flags: generated[t] is true when
// the policy sampled Tokens[t] (the input router.Roles takes).
func Generated(t *trajectory.Trajectory) []bool {
	g := make([]bool, len(t.Tokens))
	for i := 1; i < len(g); i++ {
		g[i] = t.Policy[i-1]
	}
	return g
}

func int64s(ids []int) []int64 {
	out := make([]int64, len(ids))
	for i, id := range ids {
		out[i] = int64(id)
	}
	return out
}

// MaxQueryBytes bounds the query the loop sends for one <search>: a
// degenerate policy can write thousands of tokens inside the tags, which a
// /retrieve server refuses (its --max-query-bytes, 8 KiB by default) and
// which would then fail the whole batch. Search-R1's queries are a few
// words; BM25 over the first kilobyte is the same search in practice. The
// trajectory keeps the query as written.
const MaxQueryBytes = 1 << 10

// capQuery cuts q to MaxQueryBytes at a UTF-8 boundary.
func capQuery(q string) string {
	if len(q) <= MaxQueryBytes {
		return q
	}
	cut := MaxQueryBytes
	for cut > 0 && !utf8.RuneStart(q[cut]) {
		cut--
	}
	return q[:cut]
}
