package runtime_test

import (
	"context"
	"errors"
	"strings"

	"fmt"
	"math"

	"testing"

	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/dartc/dartc/runtime"
)

func openLlama(t testing.TB, maxLength int64) *runtime.Decoder {
	t.Helper()
	orttest.Init(t)
	d, err := runtime.NewDecoder(runtime.DecoderSpec{Path: llamaModel, MaxLength: maxLength, Options: &runtime.Options{IntraOpThreads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Destroy() })
	return d
}

// batchPrompts have different lengths so that left padding is exercised.
var batchPrompts = [][]int64{
	{1, 450, 4996, 17354, 1701, 432, 17204, 975, 278, 17366},
	{1, 3439, 17443},
	{1, 1724, 338, 278, 7483, 310},
	{1, 15043},
}

func TestGreedyCacheEqualsFullRecomputation(t *testing.T) {
	d := openLlama(t, 0)
	if !d.HasCache() || len(d.Spec().Cache) != 2 {
		t.Fatalf("cache not detected: %+v", d.Spec().Cache)
	}
	cfg := runtime.GenerateConfig{MaxNewTokens: 24, PadToken: 2}
	cached, _, err := d.Generate(context.Background(), batchPrompts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.NoCache = true
	full, _, err := d.Generate(context.Background(), batchPrompts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range batchPrompts {
		if fmt.Sprint(cached[i].Tokens) != fmt.Sprint(full[i].Tokens) {
			t.Errorf("row %d: cached %v\n          full   %v", i, cached[i].Tokens, full[i].Tokens)
		}
		for j := range cached[i].LogProbs {
			// fp16 graph: the two paths round differently in the cache.
			if d := math.Abs(cached[i].LogProbs[j] - full[i].LogProbs[j]); d > 2e-2 {
				t.Errorf("row %d token %d: log-prob cached %g full %g", i, j, cached[i].LogProbs[j], full[i].LogProbs[j])
			}
		}
		if len(cached[i].Tokens) != 24 || cached[i].Stop != runtime.StopLength {
			t.Errorf("row %d: %d tokens, stop %s", i, len(cached[i].Tokens), cached[i].Stop)
		}
	}
	t.Logf("row 0: %v", cached[0].Tokens)
}

// TestBatchRowsEqualSingleRuns: left padding, the mask and the position ids
// must make each row of a padded batch generate what it does alone.
func TestBatchRowsEqualSingleRuns(t *testing.T) {
	d := openLlama(t, 0)
	cfg := runtime.GenerateConfig{MaxNewTokens: 16, PadToken: 2}
	batch, _, err := d.Generate(context.Background(), batchPrompts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range batchPrompts {
		one, _, err := d.Generate(context.Background(), [][]int64{p}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(one[0].Tokens) != fmt.Sprint(batch[i].Tokens) {
			t.Errorf("row %d: in batch %v\n       alone    %v", i, batch[i].Tokens, one[0].Tokens)
		}
	}
}

// TestLogProbsMatchOneForwardPass recomputes log_softmax by hand from the
// logits of a single uncached forward pass over prompt+generated tokens.
func TestLogProbsMatchOneForwardPass(t *testing.T) {
	d := openLlama(t, 0)
	prompt := batchPrompts[2]
	seqs, _, err := d.Generate(context.Background(), [][]int64{prompt}, runtime.GenerateConfig{
		MaxNewTokens: 10, PadToken: 2, Seed: 3, Sampling: runtime.Sampling{Temperature: 1.3, TopP: 0.9},
	})
	if err != nil {
		t.Fatal(err)
	}
	full := append(append([]int64(nil), prompt...), seqs[0].Tokens...)
	n := int64(len(full))
	ids, _ := runtime.FromInt64([]int64{1, n}, full)
	mask := runtime.NewTensor(runtime.Int64, 1, n)
	pos := runtime.NewTensor(runtime.Int64, 1, n)
	for i := range n {
		mask.Int64()[i], pos.Int64()[i] = 1, i
	}
	in := map[string]*runtime.Tensor{"input_ids": ids, "attention_mask": mask, "position_ids": pos}
	for l := range 2 {
		for _, kv := range []string{"key", "value"} {
			in[fmt.Sprintf("past_key_values.%d.%s", l, kv)] = runtime.NewTensor(runtime.Float16, 1, 1, 0, 16)
		}
	}
	out, err := d.Session().Run(in, "logits")
	if err != nil {
		t.Fatal(err)
	}
	logits := out["logits"].Floats()
	V := 32000
	for j, tok := range seqs[0].Tokens {
		row := logits[(len(prompt)-1+j)*V : (len(prompt)+j)*V]
		sum := 0.0
		for _, v := range row {
			sum += math.Exp(v)
		}
		want := row[tok] - math.Log(sum)
		if diff := math.Abs(seqs[0].LogProbs[j] - want); diff > 1e-2 {
			t.Errorf("token %d (%d): log-prob %g, one forward pass gives %g", j, tok, seqs[0].LogProbs[j], want)
		}
	}
}

func TestSeededSamplingIsReproducible(t *testing.T) {
	d := openLlama(t, 0)
	cfg := runtime.GenerateConfig{MaxNewTokens: 20, PadToken: 2, Seed: 42,
		Sampling: runtime.Sampling{Temperature: 1, TopK: 50, TopP: 0.95}}
	a, _, err := d.Generate(context.Background(), batchPrompts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := d.Generate(context.Background(), batchPrompts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Seed = 43
	c, _, err := d.Generate(context.Background(), batchPrompts, cfg)
	if err != nil {
		t.Fatal(err)
	}
	differ := false
	for i := range a {
		if fmt.Sprint(a[i].Tokens, a[i].LogProbs) != fmt.Sprint(b[i].Tokens, b[i].LogProbs) {
			t.Errorf("row %d: same seed, different samples:\n%v\n%v", i, a[i].Tokens, b[i].Tokens)
		}
		differ = differ || fmt.Sprint(a[i].Tokens) != fmt.Sprint(c[i].Tokens)
	}
	if !differ {
		t.Error("seeds 42 and 43 sampled identical batches")
	}
}

func TestStopTokensStringsAndRoles(t *testing.T) {
	d := openLlama(t, 0)
	ctx := context.Background()
	prompt := [][]int64{batchPrompts[0]}
	ref, _, err := d.Generate(ctx, prompt, runtime.GenerateConfig{MaxNewTokens: 24, PadToken: 2})
	if err != nil {
		t.Fatal(err)
	}
	toks := ref[0].Tokens
	// A stop token ends the row at its first occurrence, kept.
	first := map[int64]int{}
	for i, tok := range toks {
		if _, ok := first[tok]; !ok {
			first[tok] = i
		}
	}
	stop := toks[7]
	got, _, err := d.Generate(ctx, prompt, runtime.GenerateConfig{MaxNewTokens: 24, PadToken: 2, StopTokens: []int64{stop}})
	if err != nil {
		t.Fatal(err)
	}
	if want := toks[:first[stop]+1]; fmt.Sprint(got[0].Tokens) != fmt.Sprint(want) || got[0].Stop != runtime.StopToken {
		t.Errorf("stop token %d: got %v (%s), want %v", stop, got[0].Tokens, got[0].Stop, want)
	}
	// A stop string spanning two tokens: each token decodes to one letter.
	decode := func(ids []int64) string {
		var b strings.Builder
		for _, id := range ids {
			b.WriteByte(byte('a' + id%26))
		}
		return b.String()
	}
	text := decode(toks)
	s := text[9:11]
	end := strings.Index(text, s) + len(s)
	got, _, err = d.Generate(ctx, prompt, runtime.GenerateConfig{MaxNewTokens: 24, PadToken: 2, StopStrings: []string{"zzzzz", s}, Decode: decode})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got[0].Tokens) != fmt.Sprint(toks[:end]) || got[0].Stop != runtime.StopString || got[0].StopString != s {
		t.Errorf("stop string %q: got %v (%s %q), want %v", s, got[0].Tokens, got[0].Stop, got[0].StopString, toks[:end])
	}
	// Roles: the callback sees each position's prefix; here role = parity
	// of the position's token.
	parity := func(row int, tokens []int64) int64 { return tokens[len(tokens)-1] % 2 }
	got, _, err = d.Generate(ctx, batchPrompts, runtime.GenerateConfig{MaxNewTokens: 5, PadToken: 2, Roles: parity})
	if err != nil {
		t.Fatal(err)
	}
	for i, g := range got {
		all := append(append([]int64(nil), g.Prompt...), g.Tokens...)
		if len(g.Roles) != len(all)-1 {
			t.Fatalf("row %d: %d roles for %d fed positions", i, len(g.Roles), len(all)-1)
		}
		for p, r := range g.Roles {
			if r != all[p]%2 {
				t.Fatalf("row %d position %d: role %d, want %d", i, p, r, all[p]%2)
			}
		}
	}
}

func TestGenerateBadInput(t *testing.T) {
	d := openLlama(t, 12)
	ctx := context.Background()
	long := [][]int64{{1, 2}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13}}
	_, _, err := d.Generate(ctx, long, runtime.GenerateConfig{MaxNewTokens: 4})
	if !errors.Is(err, runtime.ErrPromptTooLong) || !strings.Contains(err.Error(), "prompt 1 has 13 tokens, the model's context is 12") {
		t.Errorf("long prompt: err = %v", err)
	}
	_, _, err = d.Generate(ctx, [][]int64{long[1][:12]}, runtime.GenerateConfig{MaxNewTokens: 4})
	if !errors.Is(err, runtime.ErrPromptTooLong) {
		t.Errorf("prompt filling the context: err = %v", err)
	}
	got, _, err := d.Generate(ctx, [][]int64{long[1][:9], {1, 2}}, runtime.GenerateConfig{MaxNewTokens: 8})
	if err != nil {
		t.Fatal(err)
	}
	if len(got[0].Tokens) != 3 || got[0].Stop != runtime.StopContext || len(got[1].Tokens) != 8 || got[1].Stop != runtime.StopLength {
		t.Errorf("context stop: row 0 %d tokens (%s), row 1 %d tokens (%s)", len(got[0].Tokens), got[0].Stop, len(got[1].Tokens), got[1].Stop)
	}
	for _, c := range []struct {
		prompts [][]int64
		cfg     runtime.GenerateConfig
		want    string
	}{
		{[][]int64{{1}}, runtime.GenerateConfig{}, "MaxNewTokens must be > 0"},
		{nil, runtime.GenerateConfig{MaxNewTokens: 1}, "no prompts"},
		{[][]int64{{}}, runtime.GenerateConfig{MaxNewTokens: 1}, "prompt 0 is empty"},
		{[][]int64{{1, 32000}}, runtime.GenerateConfig{MaxNewTokens: 1}, "id 32000, outside the vocabulary [0, 32000)"},
		{[][]int64{{1}}, runtime.GenerateConfig{MaxNewTokens: 1, StopStrings: []string{"x"}}, "need a Decode function"},
		{[][]int64{{1}}, runtime.GenerateConfig{MaxNewTokens: 1, Sampling: runtime.Sampling{TopP: 2}}, "top-p 2 must be in [0, 1]"},
		{[][]int64{{1}}, runtime.GenerateConfig{MaxNewTokens: 1, Inputs: map[string]*runtime.Tensor{"input_ids": runtime.NewTensor(runtime.Int64, 1, 1)}}, `input "input_ids" is computed by generation`},
	} {
		if _, _, err := d.Generate(ctx, c.prompts, c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("err = %v, want %q", err, c.want)
		}
	}
}

// TestManifestDecoderKeepsGraphSettings: a compiled graph is opened with
// the session settings its manifest records, whatever the caller adds
// (ForGraph, as the trainer opens its graphs). A float64 decode.onnx
// records the ORT fusions it must run without; a caller that disables some
// other optimizer must not drop that entry, or the session fails to open
// (QuickGelu has no float64 kernel). The manifest's ort_optimization is
// taken too.
func TestManifestDecoderKeepsGraphSettings(t *testing.T) {
	out := compileDecode(t, 48, synth.Options{Seed: 3, DType: synth.Float64})
	m, err := manifest.Read(out)
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graphs[manifest.GraphDecode]
	if got := g.SessionConfig[runtime.DisableOptimizersKey]; got != runtime.Float64DisabledOptimizers {
		t.Fatalf("the float64 decode.onnx records %s = %q, want %q: the fixture no longer tests the precedence", runtime.DisableOptimizersKey, got, runtime.Float64DisabledOptimizers)
	}
	opts := &runtime.Options{IntraOpThreads: 1, Config: map[string]string{runtime.DisableOptimizersKey: "ConstantSharing", "session.intra_op.allow_spinning": "0"}}
	d, err := runtime.NewDecoderFromManifest(out, opts)
	if err != nil {
		t.Fatalf("a caller's %s replaced the graph's: %v", runtime.DisableOptimizersKey, err)
	}
	defer d.Destroy()
	cfg := d.Spec().Options.Config
	if cfg[runtime.DisableOptimizersKey] != runtime.Float64DisabledOptimizers || cfg["session.intra_op.allow_spinning"] != "0" {
		t.Errorf("session config %v: want the graph's %s and the caller's other entries", cfg, runtime.DisableOptimizersKey)
	}
	if opts.Config[runtime.DisableOptimizersKey] != "ConstantSharing" {
		t.Errorf("the caller's options were modified: %v", opts.Config)
	}
	if _, _, err := d.Generate(context.Background(), [][]int64{{1, 2, 3}}, runtime.GenerateConfig{MaxNewTokens: 2, Inputs: zeroInputs(d)}); err != nil {
		t.Fatal(err)
	}

	g.Optimization = manifest.OptimizationNone
	if err := manifest.Write(out, m); err != nil {
		t.Fatal(err)
	}
	spec, err := runtime.ManifestDecoderSpec(out, opts)
	if err != nil {
		t.Fatal(err)
	}
	if spec.Options.Optimization != runtime.OptimizeNone {
		t.Errorf("ort_optimization %q in the manifest: the decoder's optimization level is %v, want OptimizeNone", g.Optimization, spec.Options.Optimization)
	}
}

// TestGenerateMaxLengthPerRow: GenerateConfig.MaxLength lowers the context
// for one call, and like the model's context it ends each row by itself: a
// row that reaches it stops with StopContext while the others generate on,
// each as it would alone. (The agent loop used to take the smallest room
// left over the batch as every row's MaxNewTokens.) A prompt filling it is
// refused naming that limit, and a MaxLength above the model's context
// leaves the model's in force.
func TestGenerateMaxLengthPerRow(t *testing.T) {
	d := openLlama(t, 0)
	ctx := context.Background()
	long, short := batchPrompts[0], batchPrompts[3] // 10 and 2 tokens
	cfg := runtime.GenerateConfig{MaxNewTokens: 8, MaxLength: 12, PadToken: 2}
	both, _, err := d.Generate(ctx, [][]int64{long, short}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(both[0].Tokens) != 2 || both[0].Stop != runtime.StopContext {
		t.Errorf("the 10-token prompt in a 12-token context: %d tokens (%s), want 2 (%s)", len(both[0].Tokens), both[0].Stop, runtime.StopContext)
	}
	alone, _, err := d.Generate(ctx, [][]int64{short}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(both[1].Tokens) != fmt.Sprint(alone[0].Tokens) || both[1].Stop != runtime.StopLength || len(alone[0].Tokens) != 8 {
		t.Errorf("the short row: batched %v (%s), alone %v (%s); want the same 8 tokens, stopped by MaxNewTokens",
			both[1].Tokens, both[1].Stop, alone[0].Tokens, alone[0].Stop)
	}
	_, _, err = d.Generate(ctx, [][]int64{long}, runtime.GenerateConfig{MaxNewTokens: 1, MaxLength: 10})
	if !errors.Is(err, runtime.ErrPromptTooLong) || !strings.Contains(err.Error(), "the context (GenerateConfig.MaxLength) is 10 tokens") {
		t.Errorf("a prompt filling MaxLength: err = %v", err)
	}
	small := openLlama(t, 12)
	got, _, err := small.Generate(ctx, [][]int64{long}, runtime.GenerateConfig{MaxNewTokens: 8, MaxLength: 100})
	if err != nil {
		t.Fatal(err)
	}
	if len(got[0].Tokens) != 2 || got[0].Stop != runtime.StopContext {
		t.Errorf("MaxLength 100 on a 12-token model: %d tokens (%s), want 2 (%s)", len(got[0].Tokens), got[0].Stop, runtime.StopContext)
	}
}
