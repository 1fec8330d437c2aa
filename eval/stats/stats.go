package stats

import (
	"encoding/json"
	"math"
	"sort"
)

// Distribution summarizes a sample of values.
type Distribution struct {
	N                               int
	Mean, Std                       float64
	Min, P10, P25, Median, P75, P90 float64
	Max                             float64
}

// Describe returns the distribution of values (quantiles by linear
// interpolation between order statistics; Std is the sample standard
// deviation, 0 for one value). An empty sample gives N = 0 and NaNs.
func Describe(values []float64) Distribution {
	d := Distribution{N: len(values)}
	if d.N == 0 {
		nan := math.NaN()
		return Distribution{Mean: nan, Std: nan, Min: nan, P10: nan, P25: nan, Median: nan, P75: nan, P90: nan, Max: nan}
	}
	v := append([]float64(nil), values...)
	sort.Float64s(v)
	sum := 0.0
	for _, x := range v {
		sum += x
	}
	d.Mean = sum / float64(d.N)
	if d.N > 1 {
		ss := 0.0
		for _, x := range v {
			ss += (x - d.Mean) * (x - d.Mean)
		}
		d.Std = math.Sqrt(ss / float64(d.N-1))
	}
	q := func(p float64) float64 {
		pos := p * float64(d.N-1)
		i := int(pos)
		if i >= d.N-1 {
			return v[d.N-1]
		}
		return v[i] + (pos-float64(i))*(v[i+1]-v[i])
	}
	d.Min, d.P10, d.P25, d.Median, d.P75, d.P90, d.Max = v[0], q(0.1), q(0.25), q(0.5), q(0.75), q(0.9), v[d.N-1]
	return d
}

// MarshalJSON writes undefined (NaN) fields as null.
func (d Distribution) MarshalJSON() ([]byte, error) {
	f := func(v float64) *float64 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return &v
	}
	return json.Marshal(struct {
		N      int      `json:"n"`
		Mean   *float64 `json:"mean"`
		Std    *float64 `json:"std"`
		Min    *float64 `json:"min"`
		P10    *float64 `json:"p10"`
		P25    *float64 `json:"p25"`
		Median *float64 `json:"median"`
		P75    *float64 `json:"p75"`
		P90    *float64 `json:"p90"`
		Max    *float64 `json:"max"`
	}{d.N, f(d.Mean), f(d.Std), f(d.Min), f(d.P10), f(d.P25), f(d.Median), f(d.P75), f(d.P90), f(d.Max)})
}

// Pearson returns the correlation of x and y, NaN when fewer than two
// points or either is constant. x and y must have the same length.
func Pearson(x, y []float64) float64 {
	n := float64(len(x))
	if len(x) < 2 || len(x) != len(y) {
		return math.NaN()
	}
	var mx, my float64
	for i := range x {
		mx += x[i]
		my += y[i]
	}
	mx, my = mx/n, my/n
	var sxy, sxx, syy float64
	for i := range x {
		sxy += (x[i] - mx) * (y[i] - my)
		sxx += (x[i] - mx) * (x[i] - mx)
		syy += (y[i] - my) * (y[i] - my)
	}
	if sxx == 0 || syy == 0 {
		return math.NaN()
	}
	return sxy / math.Sqrt(sxx*syy)
}
