package runtime

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
)

// Sampling chooses how the next token is drawn from the logits.
//
// The zero value is greedy decoding. With Temperature > 0 the logits are
// divided by it, then TopK (when > 0) keeps the K most likely tokens, then
// TopP (when in (0,1)) keeps the smallest set of most likely tokens whose
// probability reaches TopP; the kept tokens are renormalised and one is
// drawn. Ties in rank go to the lower token id, so the kept set is a
// deterministic function of the logits.
type Sampling struct {
	Temperature float64
	TopK        int
	TopP        float64
}

// Greedy reports whether s picks the argmax.
func (s Sampling) Greedy() bool { return s.Temperature <= 0 }

// Validate checks the settings.
func (s Sampling) Validate() error {
	switch {
	case math.IsNaN(s.Temperature) || s.Temperature < 0:
		return fmt.Errorf("runtime: temperature %v must be ≥ 0 (0 is greedy)", s.Temperature)
	case s.TopK < 0:
		return fmt.Errorf("runtime: top-k %d must be ≥ 0 (0 keeps every token)", s.TopK)
	case math.IsNaN(s.TopP) || s.TopP < 0 || s.TopP > 1:
		return fmt.Errorf("runtime: top-p %v must be in [0, 1] (0 or 1 keeps every token)", s.TopP)
	}
	return nil
}

// LogSoftmaxAt returns log_softmax(logits)[i], computed stably.
func LogSoftmaxAt(logits []float64, i int) float64 {
	return logits[i] - logSumExp(logits)
}

func logSumExp(x []float64) float64 {
	m := math.Inf(-1)
	for _, v := range x {
		if v > m {
			m = v
		}
	}
	if math.IsInf(m, -1) {
		return m
	}
	sum := 0.0
	for _, v := range x {
		sum += math.Exp(v - m)
	}
	return m + math.Log(sum)
}

// Argmax returns the index of the largest value, the lowest on ties.
func Argmax(x []float64) int {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return best
}

// Candidates are the tokens a sampling step may draw, with their
// renormalised probabilities: most likely first when top-k or top-p
// truncates, in vocabulary order when every token is kept (drawing needs no
// order, and sorting 152k logits per step would dominate the step).
type Candidates struct {
	Tokens []int
	Probs  []float64
}

// Filter applies temperature, top-k and top-p to logits and returns the
// tokens that survive with their probabilities (which sum to 1). For greedy
// settings it returns the argmax alone.
func (s Sampling) Filter(logits []float64) Candidates {
	if s.Greedy() {
		return Candidates{Tokens: []int{Argmax(logits)}, Probs: []float64{1}}
	}
	order := make([]int, len(logits))
	for i := range order {
		order[i] = i
	}
	less := func(a, b int) bool {
		if logits[a] != logits[b] {
			return logits[a] > logits[b]
		}
		return a < b
	}
	k := len(order)
	var sum float64 // Σ exp(logit/T − max) over the tokens top-k keeps
	switch {
	case s.TopK > 0 && s.TopK < k:
		k = s.TopK
		order = topK(order, k, less)
	case s.TopP > 0 && s.TopP < 1:
		// Top-p alone: sorting the whole vocabulary is the slow part. Every
		// token outside the set {w ≥ τ} is lighter than every token inside
		// it, so once the set holds TopP of the mass the nucleus lies in it;
		// a weighted selection then finds the nucleus in linear time, and
		// only a small one is sorted (a flat distribution's nucleus is most
		// of the vocabulary, and drawing needs no order).
		set, w, total := nucleusCandidates(logits, s.Temperature, s.TopP)
		order = nucleusCut(set, w, s.TopP*total, less)
		if len(order) <= sortedNucleus {
			sort.Slice(order, func(i, j int) bool { return less(order[i], order[j]) })
		}
		probs := make([]float64, len(order))
		mass := 0.0
		for i, tok := range order {
			probs[i] = w[tok]
			mass += w[tok]
		}
		for i := range probs {
			probs[i] /= mass
		}
		return Candidates{Tokens: order, Probs: probs}
	}
	order = order[:k]
	// Softmax of logits/T over the kept tokens.
	probs := make([]float64, k)
	m := math.Inf(-1)
	for _, tok := range order {
		m = math.Max(m, logits[tok]/s.Temperature)
	}
	partial := 0.0
	for i, tok := range order {
		probs[i] = math.Exp(logits[tok]/s.Temperature - m)
		partial += probs[i]
	}
	if sum == 0 {
		sum = partial
	}
	for i := range probs {
		probs[i] /= sum
	}
	if s.TopP > 0 && s.TopP < 1 {
		// Keep a token while the mass before it is still below TopP.
		cum, n := 0.0, 0
		for n < k && cum < s.TopP {
			cum += probs[n]
			n++
		}
		order, probs = order[:n], probs[:n]
		for i := range probs {
			probs[i] /= cum
		}
	}
	return Candidates{Tokens: order, Probs: probs}
}

// nucleusCandidates returns, unordered, the tokens whose weight
// w = exp(logit/T − max) is at least some τ chosen so that they hold at
// least topP of the total weight, and that total. τ starts at the largest
// weight and halves until the set is heavy enough.
func nucleusCandidates(logits []float64, temperature, topP float64) ([]int, []float64, float64) {
	m := math.Inf(-1)
	for _, v := range logits {
		m = max(m, v/temperature)
	}
	w := make([]float64, len(logits))
	total := 0.0
	for i, v := range logits {
		w[i] = math.Exp(v/temperature - m)
		total += w[i]
	}
	for tau := 1.0; ; tau /= 2 {
		var set []int
		mass := 0.0
		for i, x := range w {
			if x >= tau {
				set = append(set, i)
				mass += x
			}
		}
		// The margin keeps rounding in the two sums from cutting the
		// nucleus short; a slightly larger set changes nothing.
		if mass >= topP*total*(1+1e-9) || len(set) == len(w) || tau == 0 {
			return set, w, total
		}
	}
}

// sortedNucleus is the largest nucleus returned in order (most likely
// first); larger ones stay unordered.
const sortedNucleus = 4096

// nucleusCut returns, unordered, the shortest prefix of set in less's order
// (most likely first) whose weight reaches target: every token before the
// first one at which the running mass reaches target, and that token. It
// is a weighted quickselect: expected time linear in len(set).
func nucleusCut(set []int, w []float64, target float64, less func(a, b int) bool) []int {
	var out []int
	acc := 0.0
	rest := append([]int(nil), set...)
	var before, after []int
	for len(rest) > 0 {
		pivot := rest[len(rest)/2]
		before, after = before[:0], after[:0]
		mass := 0.0
		for _, x := range rest {
			switch {
			case x == pivot:
			case less(x, pivot):
				before = append(before, x)
				mass += w[x]
			default:
				after = append(after, x)
			}
		}
		if acc+mass >= target {
			rest = append(rest[:0], before...) // the cut is among them
			continue
		}
		out = append(out, before...)
		out = append(out, pivot)
		acc += mass + w[pivot]
		if acc >= target {
			return out
		}
		rest = append(rest[:0], after...)
	}
	return out
}

// topK returns the k smallest elements of idx under less, sorted, in
// O(n log k) with a bounded max-heap instead of a full sort of the vocabulary.
func topK(idx []int, k int, less func(a, b int) bool) []int {
	h := make([]int, 0, k)
	// h is a heap whose root is the worst kept element.
	worse := func(i, j int) bool { return less(h[j], h[i]) }
	down := func(i int) {
		for {
			l, r, w := 2*i+1, 2*i+2, i
			if l < len(h) && worse(l, w) {
				w = l
			}
			if r < len(h) && worse(r, w) {
				w = r
			}
			if w == i {
				return
			}
			h[i], h[w] = h[w], h[i]
			i = w
		}
	}
	for _, x := range idx {
		if len(h) < k {
			h = append(h, x)
			for i := len(h) - 1; i > 0; {
				p := (i - 1) / 2
				if !worse(i, p) {
					break
				}
				h[i], h[p] = h[p], h[i]
				i = p
			}
			continue
		}
		if less(x, h[0]) {
			h[0] = x
			down(0)
		}
	}
	sort.Slice(h, func(i, j int) bool { return less(h[i], h[j]) })
	return h
}

// Draw samples one token from logits with rng. It returns the token, the
// policy log-prob log_softmax(logits)[token] (temperature 1, no
// truncation: what GRPO's ratio needs), and the log-prob of the token under
// the distribution it was actually drawn from (0 for greedy).
func (s Sampling) Draw(logits []float64, rng *rand.Rand) (token int, policyLogProb, sampledLogProb float64) {
	token, p := pick(s.Filter(logits), rng)
	return token, LogSoftmaxAt(logits, token), math.Log(p)
}

// pick draws one candidate by inverse CDF; a single candidate takes no
// random number, so greedy decoding leaves the RNG untouched.
func pick(c Candidates, rng *rand.Rand) (token int, prob float64) {
	i := 0
	if len(c.Tokens) > 1 {
		u := rng.Float64()
		cum := 0.0
		i = len(c.Tokens) - 1 // rounding may leave cum a hair under u
		for j, p := range c.Probs {
			cum += p
			if u < cum {
				i = j
				break
			}
		}
	}
	return c.Tokens[i], c.Probs[i]
}

// RowRNG returns the random source of one batch row: PCG seeded from
// (seed, row), so a row's samples do not depend on the batch around it.
func RowRNG(seed uint64, row int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(row)))
}

// Sampler draws tokens from float32 logits exactly as Filter's
// distribution, without sorting and, once its buffers have grown to the
// vocabulary, without allocating. The zero value is ready to use; a
// Sampler is not safe for concurrent use.
//
// A draw proposes a token from the temperature softmax over the top-k
// tokens (inverse CDF in vocabulary order) and accepts it when the tokens
// ranked before it (higher logit, or an equal logit and a lower id) hold
// less than TopP of the mass, as Filter's nucleus does; otherwise it
// proposes again. The accepted token follows the renormalised nucleus, and
// a proposal is accepted with probability at least TopP.
type Sampler struct {
	w   []float64 // weights exp((l − max)/T) of the kept tokens
	idx []int32   // top-k selection
}

// Draw samples one token from logits (temperature > 0) with rng. Logits
// holding a NaN or +Inf, or only -Inf (a diverged model), give no
// distribution to draw from: Draw returns an error instead of proposing
// forever.
func (sm *Sampler) Draw(s Sampling, logits []float32, rng *rand.Rand) (int, error) {
	V := len(logits)
	if cap(sm.w) < V {
		sm.w = make([]float64, V)
	}
	w := sm.w[:V]
	ahead := func(a, b int) bool { // a ranks before b
		return logits[a] > logits[b] || (logits[a] == logits[b] && a < b)
	}
	// Top-k: the k-th ranked token bounds the kept set.
	kth := -1
	if s.TopK > 0 && s.TopK < V {
		kth = sm.kth(logits, s.TopK, ahead)
	}
	m, _ := maxArg(logits)
	invT := float32(1 / s.Temperature)
	total := 0.0
	for i, l := range logits {
		if l != l { // NaN, even where top-k would leave it out: a diverged model
			return 0, errNonFiniteLogits(fmt.Sprintf("logit %d is", i), float64(l))
		}
		if kth >= 0 && i != kth && !ahead(i, kth) {
			w[i] = 0
			continue
		}
		w[i] = float64(expNonPositive((l - m) * invT))
		total += w[i]
	}
	// The largest kept weight is e^0 = 1, so a finite total is ≥ 1; an
	// +Inf logit (or only -Inf ones) makes it NaN, and every top-p test
	// below would then fail.
	if !(total >= 1) || math.IsInf(total, 0) {
		return 0, errNonFiniteLogits("their weights sum to", total)
	}
	nucleus := s.TopP > 0 && s.TopP < 1
	for {
		target := rng.Float64() * total
		c, cum := -1, 0.0
		for i, x := range w {
			cum += x
			if x > 0 {
				c = i
				if cum > target {
					break
				}
			}
		}
		if !nucleus {
			return c, nil
		}
		mass := 0.0
		for i, x := range w {
			if x > 0 && ahead(i, c) {
				mass += x
			}
		}
		if mass < s.TopP*total {
			return c, nil
		}
	}
}

// errNonFiniteLogits is the error of a host draw from logits holding a NaN
// or +Inf; what and v name the quantity that showed it.
func errNonFiniteLogits(what string, v float64) error {
	return fmt.Errorf("runtime: sample: the logits are not finite (%s %v): a NaN or +Inf logit, most likely from diverged adapters or weights; check the adapters and the training run that wrote them (a NaN loss or grad norm)", what, v)
}

// kth returns the token ranked k-th (1-based) under ahead: a quickselect
// over an index buffer reused across draws.
func (sm *Sampler) kth(logits []float32, k int, ahead func(a, b int) bool) int {
	V := len(logits)
	if cap(sm.idx) < V {
		sm.idx = make([]int32, V)
	}
	idx := sm.idx[:V]
	for i := range idx {
		idx[i] = int32(i)
	}
	lo, hi, want := 0, V-1, k-1
	for lo < hi {
		// Median of three as the pivot, then a Hoare partition.
		mid := lo + (hi-lo)/2
		a, b, c := int(idx[lo]), int(idx[mid]), int(idx[hi])
		p := b
		if ahead(a, b) != ahead(a, c) {
			p = a
		} else if ahead(b, a) != ahead(b, c) {
			p = b
		} else {
			p = c
		}
		i, j := lo, hi
		for i <= j {
			for ahead(int(idx[i]), p) {
				i++
			}
			for ahead(p, int(idx[j])) {
				j--
			}
			if i <= j {
				idx[i], idx[j] = idx[j], idx[i]
				i++
				j--
			}
		}
		switch {
		case want <= j:
			hi = j
		case want >= i:
			lo = i
		default:
			return int(idx[want])
		}
	}
	return int(idx[lo])
}
