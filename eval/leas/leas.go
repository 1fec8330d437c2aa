package leas

import (
	"errors"
	"fmt"
	"math"

	"github.com/dartc/dartc/eval/stats"
)

// Config is one of the six LEAS configurations.
type Config int

// The configurations, in the order of the rows of X.
const (
	Base Config = iota
	Reas
	Tool
	Unified
	HTool
	HReas
	NumConfigs
)

// Terms is the number of coefficients in λ.
const Terms = 6

// Interaction is the index of λ_23, the tool×reason coefficient.
const Interaction = 5

// TermNames names the coefficients of λ in order.
var TermNames = [Terms]string{"base", "tool", "reason", "base×tool", "base×reason", "tool×reason"}

var configNames = [NumConfigs]string{"M_Base", "M_Reas", "M_Tool", "M_Unified", "H_Tool", "H_Reas"}

// X holds each configuration's term indicator vector x_M.
var X = [NumConfigs][Terms]float64{
	Base:    {1, 0, 0, 0, 0, 0},
	Reas:    {1, 0, 1, 0, 1, 0},
	Tool:    {1, 1, 0, 1, 0, 0},
	Unified: {1, 1, 1, 1, 1, 1},
	HTool:   {1, 1, 0, 0, 0, 0},
	HReas:   {1, 0, 1, 0, 0, 0},
}

func (c Config) String() string {
	if c < 0 || c >= NumConfigs {
		return fmt.Sprintf("Config(%d)", int(c))
	}
	return configNames[c]
}

// ParseConfig returns the configuration named s (as String prints it).
func ParseConfig(s string) (Config, error) {
	for i, n := range configNames {
		if n == s {
			return Config(i), nil
		}
	}
	return 0, fmt.Errorf("leas: unknown configuration %q (want one of %v)", s, configNames)
}

// DefaultAlpha is the default smoothing pseudo-count: Jeffreys' prior.
const DefaultAlpha = 0.5

// Smooth returns (correct + alpha)/(k + 2·alpha).
func Smooth(correct, k int, alpha float64) float64 {
	return (float64(correct) + alpha) / (float64(k) + 2*alpha)
}

func logit(p float64) float64 { return math.Log(p / (1 - p)) }

// Sigmoid is σ(z) = 1/(1+e^−z).
func Sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

var errSingular = errors.New("leas: singular system (broken configuration table)")

// Solve returns λ with σ(x_Mᵀλ) = s[M] for every configuration, by Gaussian
// elimination with partial pivoting on [X | logit(s)]. Every s[M] must lie
// strictly between 0 and 1.
func Solve(s [NumConfigs]float64) ([Terms]float64, error) {
	var a [NumConfigs][Terms + 1]float64
	for m := range NumConfigs {
		if !(s[m] > 0 && s[m] < 1) {
			return [Terms]float64{}, fmt.Errorf("leas: accuracy of %v is %v, need 0 < s < 1 (smooth it)", Config(m), s[m])
		}
		copy(a[m][:Terms], X[m][:])
		a[m][Terms] = logit(s[m])
	}
	for col := range Terms {
		p := col
		for r := col + 1; r < Terms; r++ {
			if math.Abs(a[r][col]) > math.Abs(a[p][col]) {
				p = r
			}
		}
		if math.Abs(a[p][col]) < 1e-12 {
			return [Terms]float64{}, errSingular
		}
		a[col], a[p] = a[p], a[col]
		for r := range Terms {
			if r == col || a[r][col] == 0 {
				continue
			}
			f := a[r][col] / a[col][col]
			for c := col; c <= Terms; c++ {
				a[r][c] -= f * a[col][c]
			}
		}
	}
	var lambda [Terms]float64
	for i := range Terms {
		lambda[i] = a[i][Terms] / a[i][i]
	}
	return lambda, nil
}

// Question is the raw outcome of one question: K samples per configuration
// and how many of them were correct.
type Question struct {
	ID      string `json:"id"`
	K       int    `json:"k"`
	Correct [NumConfigs]int
}

// Result is one question's attribution.
type Result struct {
	ID           string
	K            int
	Correct      [NumConfigs]int
	Smoothed     [NumConfigs]float64
	Lambda       [Terms]float64
	Interference bool // Lambda[Interaction] < 0
}

// Lambda23 returns the tool×reason coefficient.
func (r Result) Lambda23() float64 { return r.Lambda[Interaction] }

// Analyze smooths each question's accuracies with alpha (DefaultAlpha when
// zero) and solves its λ.
func Analyze(qs []Question, alpha float64) ([]Result, error) {
	if alpha == 0 {
		alpha = DefaultAlpha
	}
	if !(alpha > 0) || math.IsInf(alpha, 0) {
		return nil, fmt.Errorf("leas: smoothing alpha %v, need a finite alpha > 0", alpha)
	}
	out := make([]Result, 0, len(qs))
	for i, q := range qs {
		if q.K < 1 {
			return nil, fmt.Errorf("leas: question %d (%q): k = %d, need at least one sample", i, q.ID, q.K)
		}
		r := Result{ID: q.ID, K: q.K, Correct: q.Correct}
		for m, c := range q.Correct {
			if c < 0 || c > q.K {
				return nil, fmt.Errorf("leas: question %d (%q): %v has %d correct of k = %d", i, q.ID, Config(m), c, q.K)
			}
			r.Smoothed[m] = Smooth(c, q.K, alpha)
		}
		var err error
		if r.Lambda, err = Solve(r.Smoothed); err != nil {
			return nil, fmt.Errorf("question %q: %w", q.ID, err)
		}
		r.Interference = r.Lambda[Interaction] < 0
		out = append(out, r)
	}
	return out, nil
}

// Summary is the corpus-level LEAS report.
type Summary struct {
	Questions            int
	InterferenceFraction float64 // share of questions with λ_23 < 0
	Lambda23             stats.Distribution
	// How M_Unified's success relates to λ_23: questions split by whether
	// M_Unified solved at least half of its samples.
	UnifiedSolved, UnifiedFailed stats.Distribution
	// Interference rate within each split.
	InterferenceWhenSolved, InterferenceWhenFailed float64
	// Pearson correlation between M_Unified's raw accuracy and λ_23 (NaN
	// when either is constant).
	CorrUnifiedLambda23 float64
}

// Summarize aggregates results.
func Summarize(rs []Result) Summary {
	s := Summary{Questions: len(rs)}
	var all, solved, failed []float64
	var acc []float64
	interfering, intSolved, intFailed := 0, 0, 0
	for _, r := range rs {
		l := r.Lambda23()
		all = append(all, l)
		a := float64(r.Correct[Unified]) / float64(r.K)
		acc = append(acc, a)
		if 2*r.Correct[Unified] >= r.K {
			solved = append(solved, l)
			if r.Interference {
				intSolved++
			}
		} else {
			failed = append(failed, l)
			if r.Interference {
				intFailed++
			}
		}
		if r.Interference {
			interfering++
		}
	}
	s.Lambda23, s.UnifiedSolved, s.UnifiedFailed = stats.Describe(all), stats.Describe(solved), stats.Describe(failed)
	s.InterferenceFraction = ratio(interfering, len(rs))
	s.InterferenceWhenSolved = ratio(intSolved, len(solved))
	s.InterferenceWhenFailed = ratio(intFailed, len(failed))
	s.CorrUnifiedLambda23 = stats.Pearson(acc, all)
	return s
}

func ratio(a, b int) float64 {
	if b == 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}
