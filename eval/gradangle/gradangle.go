package gradangle

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/dartc/dartc/eval/stats"
	"github.com/dartc/dartc/internal/plotpng"
)

// ErrNoDirection is returned for a zero or non-finite vector.
var ErrNoDirection = errors.New("gradangle: vector has no direction (zero or non-finite)")

// unit returns v/‖v‖ in float64.
func unit(v []float32) ([]float64, error) {
	// Scale by the largest magnitude first so that squaring cannot overflow.
	maxAbs := 0.0
	for _, x := range v {
		a := math.Abs(float64(x))
		if math.IsNaN(a) || math.IsInf(a, 0) {
			return nil, ErrNoDirection
		}
		maxAbs = math.Max(maxAbs, a)
	}
	if maxAbs == 0 {
		return nil, ErrNoDirection
	}
	u := make([]float64, len(v))
	ss := 0.0
	for i, x := range v {
		u[i] = float64(x) / maxAbs
		ss += u[i] * u[i]
	}
	n := math.Sqrt(ss)
	for i := range u {
		u[i] /= n
	}
	return u, nil
}

func angleUnit(a, b []float64) float64 {
	var d2, s2 float64
	for i := range a {
		d, s := a[i]-b[i], a[i]+b[i]
		d2 += d * d
		s2 += s * s
	}
	return 2 * math.Atan2(math.Sqrt(d2), math.Sqrt(s2)) * 180 / math.Pi
}

// Angle returns the angle between a and b in degrees, in [0, 180].
func Angle(a, b []float32) (float64, error) {
	if len(a) != len(b) {
		return 0, fmt.Errorf("gradangle: vectors of length %d and %d", len(a), len(b))
	}
	ua, err := unit(a)
	if err != nil {
		return 0, err
	}
	ub, err := unit(b)
	if err != nil {
		return 0, err
	}
	return angleUnit(ua, ub), nil
}

// Flatten concatenates named gradient tensors in name order.
func Flatten(grads map[string][]float32) []float32 {
	names := make([]string, 0, len(grads))
	n := 0
	for k, v := range grads {
		names = append(names, k)
		n += len(v)
	}
	sort.Strings(names)
	out := make([]float32, 0, n)
	for _, k := range names {
		out = append(out, grads[k]...)
	}
	return out
}

// Sample is one rollout's two gradients, each flattened with Flatten. A
// rollout without tool tokens has a zero (or nil) Tool gradient.
type Sample struct {
	ID     string
	Reason []float32
	Tool   []float32
}

// Angles holds the three distributions, in degrees.
type Angles struct {
	ReasonTool   []float64 // within each sample
	ReasonReason []float64 // across pairs of samples i < j
	ToolTool     []float64 // across pairs of samples i < j
	// Skipped counts the gradients that had no direction (no tokens of that
	// kind, or a zero gradient), by kind.
	SkippedReason, SkippedTool int
}

// Compute returns the angle distributions of samples. All non-empty
// gradients must have the same length.
func Compute(samples []Sample) (Angles, error) {
	var out Angles
	reason := make([][]float64, len(samples))
	tool := make([][]float64, len(samples))
	length := -1
	for i, s := range samples {
		for _, g := range [][]float32{s.Reason, s.Tool} {
			if len(g) == 0 {
				continue
			}
			if length >= 0 && len(g) != length {
				return Angles{}, fmt.Errorf("gradangle: sample %d (%s) has a gradient of %d values, others have %d", i, s.ID, len(g), length)
			}
			length = len(g)
		}
		if u, err := unit(s.Reason); err == nil {
			reason[i] = u
		} else {
			out.SkippedReason++
		}
		if u, err := unit(s.Tool); err == nil {
			tool[i] = u
		} else {
			out.SkippedTool++
		}
	}
	for i := range samples {
		if reason[i] != nil && tool[i] != nil {
			out.ReasonTool = append(out.ReasonTool, angleUnit(reason[i], tool[i]))
		}
		for j := i + 1; j < len(samples); j++ {
			if reason[i] != nil && reason[j] != nil {
				out.ReasonReason = append(out.ReasonReason, angleUnit(reason[i], reason[j]))
			}
			if tool[i] != nil && tool[j] != nil {
				out.ToolTool = append(out.ToolTool, angleUnit(tool[i], tool[j]))
			}
		}
	}
	return out, nil
}

// Summary describes the three distributions.
type Summary struct {
	ReasonTool    stats.Distribution `json:"reason_tool"`
	ReasonReason  stats.Distribution `json:"reason_reason"`
	ToolTool      stats.Distribution `json:"tool_tool"`
	SkippedReason int                `json:"skipped_reason"`
	SkippedTool   int                `json:"skipped_tool"`
}

// Summarize returns the distributions' summaries.
func (a Angles) Summarize() Summary {
	return Summary{
		ReasonTool: stats.Describe(a.ReasonTool), ReasonReason: stats.Describe(a.ReasonReason), ToolTool: stats.Describe(a.ToolTool),
		SkippedReason: a.SkippedReason, SkippedTool: a.SkippedTool,
	}
}

// WriteHistogram draws the three distributions over 0°–180° to a PNG file.
func (a Angles) WriteHistogram(path string) error {
	_, err := plotpng.WriteHistogram(path, plotpng.Histogram{
		Title:  "Gradient angles (shared adapter)",
		XLabel: "angle (degrees)",
		Bins:   36, Lo: 0, Hi: 180,
		Series: []plotpng.HistSeries{
			{Name: "reason–tool", Values: a.ReasonTool},
			{Name: "reason–reason", Values: a.ReasonReason},
			{Name: "tool–tool", Values: a.ToolTool},
		},
	})
	return err
}
