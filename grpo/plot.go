package grpo

import (
	"fmt"
	"math"
	"os"
	"path/filepath"

	"github.com/dartc/dartc/internal/plotpng"
)

// PlotsDir is where PlotRun writes by default, inside the run directory.
const PlotsDir = "plots"

// curve is one series of a plot: a name and the metric it draws.
type curve struct {
	name string
	get  func(Metrics) float64 // NaN: the row lacks the metric (left out)
}

// plotSpec is one PNG: a title, a y label and its curves.
type plotSpec struct {
	file, title, ylabel string
	curves              []curve
}

var plotSpecs = []plotSpec{
	{"reward.png", "Reward", "mean over rollouts", []curve{
		{"reward", func(m Metrics) float64 { return m.RewardMean }},
		{"EM", func(m Metrics) float64 { return m.EM }}}},
	{"kl.png", "KL to the base (k3)", "mean over loss tokens", []curve{
		{"kl", func(m Metrics) float64 {
			if m.KL == nil {
				return math.NaN() // kl_coef 0
			}
			return *m.KL
		}}}},
	{"policy.png", "Clipping and ratio", "fraction / ratio − 1", []curve{
		{"clip fraction", func(m Metrics) float64 { return m.ClipFrac }},
		{"ratio mean − 1", func(m Metrics) float64 { return m.RatioMean - 1 }}}},
	{"entropy.png", "Entropy", "nats per token", []curve{
		{"entropy", func(m Metrics) float64 { return m.Entropy }}}},
	{"grad_norm.png", "Gradient norm (before clipping)", "L2 norm", []curve{
		{"grad norm", func(m Metrics) float64 { return m.GradNorm }}}},
	{"lr.png", "Learning rate", "lr", []curve{
		{"lr", func(m Metrics) float64 { return m.LR }}}},
	{"length.png", "Rollouts", "tokens / searches", []curve{
		{"response tokens", func(m Metrics) float64 { return m.ResponseLength }},
		{"sampled tokens", func(m Metrics) float64 { return m.PolicyTokens }},
		{"searches × 100", func(m Metrics) float64 { return 100 * m.Searches }}}},
	{"phases.png", "Wall time per phase", "seconds per step", []curve{
		{"rollout", func(m Metrics) float64 { return m.RolloutSeconds }},
		{"reference", func(m Metrics) float64 { return m.ReferenceSeconds }},
		{"train", func(m Metrics) float64 { return m.TrainSeconds }},
		{"optimizer", func(m Metrics) float64 { return m.OptimizerSeconds }}}},
}

// PlotRun draws the curves of RUN/metrics.jsonl as PNG files in out
// ("" means RUN/plots) and returns their paths.
func PlotRun(run, out string) ([]string, error) {
	rows, err := ReadMetrics(filepath.Join(run, MetricsFile))
	if err != nil {
		return nil, fmt.Errorf("%w (is %s a directory written by `dartc train`?)", err, run)
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("grpo: %s has no steps yet: nothing to plot", filepath.Join(run, MetricsFile))
	}
	if out == "" {
		out = filepath.Join(run, PlotsDir)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return nil, fmt.Errorf("grpo: plot: %w", err)
	}
	var paths []string
	for _, p := range plotSpecs {
		c := plotpng.Curves{Title: p.title, XLabel: "step", YLabel: p.ylabel}
		for _, s := range p.curves {
			var xs, ys []float64
			for _, m := range rows {
				if y := s.get(m); !math.IsNaN(y) {
					xs, ys = append(xs, float64(m.Step)), append(ys, y)
				}
			}
			if len(xs) > 0 {
				c.Series = append(c.Series, plotpng.Series{Name: s.name, X: xs, Y: ys})
			}
		}
		if len(c.Series) == 0 {
			continue // kl.png of a run with kl_coef 0
		}
		path := filepath.Join(out, p.file)
		if err := plotpng.WriteCurves(path, c); err != nil {
			return paths, fmt.Errorf("grpo: %w", err)
		}
		paths = append(paths, path)
	}
	return paths, nil
}
