package runtime_test

import (
	"math"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/dartc/dartc/internal/orttest"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/passes"
	"github.com/dartc/dartc/passes/names"
	"github.com/dartc/dartc/runtime"
)

// samplerOverLogits builds greedy-outputs and sample-outputs over a graph
// whose logits are its input x [batch, 1, vocab], so that a test chooses
// the distribution the in-graph sampler draws from.
func samplerOverLogits(t *testing.T, vocab int64) *runtime.Session {
	t.Helper()
	orttest.Init(t)
	typ := ir.TensorType(ir.Float32, ir.Dim{Value: -1, Param: "batch"}, ir.Dim{Value: 1}, ir.Dim{Value: vocab})
	g := &ir.Graph{Name: "logits",
		Inputs:  []*ir.ValueInfo{{Name: "x", Type: typ}},
		Nodes:   []*ir.Node{{Name: "/x/Identity", OpType: "Identity", Inputs: []string{"x"}, Outputs: []string{passes.LogitsOutput}}},
		Outputs: []*ir.ValueInfo{{Name: passes.LogitsOutput, Type: typ}}}
	m := &ir.Model{IRVersion: 8, Opsets: []ir.Opset{{Version: 17}}, Graph: g}
	st := passes.NewState(m, passes.Options{})
	if err := passes.GreedyOutputs(st); err != nil {
		t.Fatal(err)
	}
	if err := passes.SampleOutputs(st); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sampler.onnx")
	if err := ir.Save(m, path, ir.EmitOptions{}); err != nil {
		t.Fatal(err)
	}
	s, err := runtime.NewSession(path, &runtime.Options{IntraOpThreads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Destroy() })
	return s
}

// drawOverLogits draws n tokens from the sampler over logits (the same in
// every row) and returns their counts, keeping the accepted rows only
// (rejection sampling: an accepted draw follows the target distribution).
// The reported log-probs must be the float64 log-softmax of the logits.
func drawOverLogits(t *testing.T, s *runtime.Session, logits []float32, cfg runtime.Sampling, n, rounds int) []int {
	t.Helper()
	V := len(logits)
	lse := func() float64 {
		m := math.Inf(-1)
		for _, l := range logits {
			m = math.Max(m, float64(l))
		}
		sum := 0.0
		for _, l := range logits {
			sum += math.Exp(float64(l) - m)
		}
		return m + math.Log(sum)
	}()
	const rows = 1000
	x := runtime.NewTensor(runtime.Float32, rows, 1, int64(V))
	for r := 0; r < rows; r++ {
		copy(x.Float32()[r*V:], logits)
	}
	temp, topK, topP := runtime.NewTensor(runtime.Float32), runtime.NewTensor(runtime.Int64), runtime.NewTensor(runtime.Float32)
	temp.Float32()[0], topK.Int64()[0], topP.Float32()[0] = float32(cfg.Temperature), int64(cfg.TopK), float32(cfg.TopP)
	rng := rand.New(rand.NewPCG(5, 9))
	counts := make([]int, V)
	for got := 0; got < n; {
		u := runtime.NewTensor(runtime.Float64, rows, int64(rounds))
		for i := range u.Float64() {
			u.Float64()[i] = 1 - rng.Float64()
		}
		res, err := s.Run(map[string]*runtime.Tensor{"x": x, names.SampleTemperature: temp, names.SampleTopK: topK,
			names.SampleTopP: topP, names.SampleUniform: u}, names.SampleToken, names.SampleLogprob, names.SampleAccepted)
		if err != nil {
			t.Fatal(err)
		}
		tok, lp, ok := res[names.SampleToken].Int64(), res[names.SampleLogprob].Float32(), res[names.SampleAccepted].Bool()
		for r := 0; r < rows && got < n; r++ {
			if !ok[r] {
				continue
			}
			counts[tok[r]]++
			got++
			if want := float64(logits[tok[r]]) - lse; math.Abs(float64(lp[r])-want) > 1e-5 {
				t.Fatalf("token %d: log-prob %.8f, log-softmax of the logits %.8f", tok[r], lp[r], want)
			}
		}
	}
	return counts
}

// TestGraphSamplerTiesAcrossBlocks checks the sampler's nucleus order
// (higher logit, ties by lower id) where it is hardest: groups of equal
// logits spread over all of the sampler's blocks, at zero and at a negative
// power of two, next to their neighbouring float32 values (the smallest
// denormal above zero; the values just above and below −2, where the step
// above is half the one below), with the top-p cut falling inside a group.
// The acceptance test compares each token against the proposal's logit or
// the next float32 above it depending on the block, and adds the ties in
// the proposal's own block separately: a wrong step, or ties counted on
// the wrong side, moves mass across the cut. Top-k cuts a group too (the
// sorted TopK path). The reference is Sampling.Filter (a sort) over the
// same logits, compared by χ² at significance 1e-4.
func TestGraphSamplerTiesAcrossBlocks(t *testing.T) {
	const V = 60 // the sampler's blocks: 6 of 10 ids
	s := samplerOverLogits(t, V)
	next := func(x float32, dir float64) float32 { return math.Nextafter32(x, float32(math.Inf(int(dir)))) }
	logits := make([]float32, V)
	for i := range logits {
		logits[i] = -6 - float32(i)/16 // distinct, below every group
	}
	set := func(v float32, ids ...int) []int {
		for _, i := range ids {
			logits[i] = v
		}
		return ids
	}
	set(next(0, 1), 11)
	zero := set(0, 3, 19, 39, 55)
	set(next(-2, 1), 13, 44)
	two := set(-2, 1, 8, 15, 22, 26, 29, 36, 43, 50, 58) // the cut after 26 falls between two members of a block
	set(next(-2, -1), 5, 31)
	l64 := make([]float64, V)
	for i, l := range logits {
		l64[i] = float64(l)
	}
	// cut returns the top-p that keeps the first k members of group (in
	// id order) and drops the others: half a member's weight past the
	// mass of the tokens ranked before the k-th.
	cut := func(temp float64, group []int, k int) float64 {
		w := func(i int) float64 { return math.Exp(l64[i] / temp) }
		total, before := 0.0, 0.0
		for i := range l64 {
			total += w(i)
			if l64[i] > l64[group[k-1]] || (l64[i] == l64[group[k-1]] && i < group[k-1]) {
				before += w(i)
			}
		}
		return float64(float32((before + w(group[k-1])/2) / total))
	}
	for _, tc := range []struct {
		name  string
		s     runtime.Sampling
		group []int // the group the cut falls in, and how many of it are kept
		kept  int
	}{
		{"zero-group", runtime.Sampling{Temperature: 1, TopP: cut(1, zero, 2)}, zero, 2},
		{"negative-power-of-two-group", runtime.Sampling{Temperature: 1, TopP: cut(1, two, 5)}, two, 5},
		{"t3-negative-power-of-two-group", runtime.Sampling{Temperature: 3, TopP: cut(3, two, 3)}, two, 3},
		{"topk3-zero-group", runtime.Sampling{Temperature: 1, TopK: 3}, zero, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.s.Filter(l64)
			probs := make([]float64, V)
			for i, tok := range c.Tokens {
				probs[tok] = c.Probs[i]
			}
			// The reference keeps exactly the intended members.
			for i, id := range tc.group {
				if (probs[id] > 0) != (i < tc.kept) {
					t.Fatalf("the reference keeps token %d: %v (want the first %d of %v)", id, probs[id] > 0, tc.kept, tc.group)
				}
			}
			n := 8000
			counts := drawOverLogits(t, s, logits, tc.s, n, 4)
			stat, df := chi2(counts, probs, n)
			crit := chi2Critical(max(df, 1), z4)
			t.Logf("%s: top-p %.9g, kept %d tokens, χ² %.1f with %d df (critical %.1f)", tc.name, tc.s.TopP, len(c.Tokens), stat, df, crit)
			if stat > crit {
				t.Errorf("χ² %.1f > %.1f: the graph's draws do not follow the reference\ncounts %v\nprobs %v", stat, crit, counts, probs)
			}
		})
	}
}
