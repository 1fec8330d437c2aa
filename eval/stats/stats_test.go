package stats

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	in := []float64{5, 1, 4, 2, 3}
	d := Describe(in)
	// Hand-computed: mean 3, sample std sqrt(10/4), P10 at position 0.4 → 1.4.
	if d.N != 5 || d.Mean != 3 || math.Abs(d.Std-math.Sqrt(2.5)) > 1e-15 || d.Min != 1 || d.Max != 5 || d.Median != 3 || d.P25 != 2 || d.P75 != 4 || math.Abs(d.P10-1.4) > 1e-15 || math.Abs(d.P90-4.6) > 1e-15 {
		t.Errorf("Describe = %+v", d)
	}
	if in[0] != 5 {
		t.Error("input reordered")
	}
	e := Describe(nil)
	if e.N != 0 || !math.IsNaN(e.Mean) {
		t.Errorf("empty = %+v", e)
	}
	b, err := json.Marshal(e)
	if err != nil || !strings.Contains(string(b), `"mean":null`) {
		t.Errorf("empty JSON = %s, %v", b, err)
	}
}

func TestPearson(t *testing.T) {
	// y = 2x+1 → 1; y = −x → −1; hand case x=(1,2,3), y=(1,3,2): cov 0.5·2/2… r = 0.5.
	if r := Pearson([]float64{1, 2, 3}, []float64{3, 5, 7}); math.Abs(r-1) > 1e-15 {
		t.Errorf("r = %v", r)
	}
	if r := Pearson([]float64{1, 2, 3}, []float64{-1, -2, -3}); math.Abs(r+1) > 1e-15 {
		t.Errorf("r = %v", r)
	}
	if r := Pearson([]float64{1, 2, 3}, []float64{1, 3, 2}); math.Abs(r-0.5) > 1e-15 {
		t.Errorf("r = %v", r)
	}
	if !math.IsNaN(Pearson([]float64{1, 1}, []float64{1, 2})) || !math.IsNaN(Pearson([]float64{1}, []float64{1})) {
		t.Error("undefined correlation not NaN")
	}
}
