package gradangle

import (
	"errors"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

func TestAngleHandCases(t *testing.T) {
	cases := []struct {
		name string
		a, b []float32
		want float64
		tol  float64
	}{
		{"same vector", []float32{0.3, -1.7, 2.5e-3, 4}, []float32{0.3, -1.7, 2.5e-3, 4}, 0, 0},
		{"scaled", []float32{1, 2, 3}, []float32{1e-20, 2e-20, 3e-20}, 0, 1e-12},
		{"orthogonal axes", []float32{1, 0, 0}, []float32{0, 5, 0}, 90, 1e-12},
		{"orthogonal constructed", []float32{1, 1, 1, 1}, []float32{1, -1, 1, -1}, 90, 1e-12},
		{"45 degrees", []float32{1, 0}, []float32{1, 1}, 45, 1e-12},
		{"60 degrees", []float32{1, 0}, []float32{1, float32(math.Sqrt(3))}, 60, 1e-5},
		{"opposite", []float32{1, -2, 3}, []float32{-1, 2, -3}, 180, 1e-12},
		{"huge values", []float32{3e38, 3e38}, []float32{3e38, -3e38}, 90, 1e-12},
	}
	for _, c := range cases {
		got, err := Angle(c.a, c.b)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if math.Abs(got-c.want) > c.tol {
			t.Errorf("%s: angle = %.15g, want %v", c.name, got, c.want)
		}
	}
	if _, err := Angle([]float32{0, 0}, []float32{1, 0}); !errors.Is(err, ErrNoDirection) {
		t.Errorf("zero vector: err = %v", err)
	}
	if _, err := Angle([]float32{float32(math.NaN())}, []float32{1}); !errors.Is(err, ErrNoDirection) {
		t.Errorf("NaN: err = %v", err)
	}
	if _, err := Angle([]float32{1}, []float32{1, 2}); err == nil {
		t.Error("length mismatch accepted")
	}
}

// Against the textbook formula acos(a·b / (‖a‖‖b‖)) in float64, away from
// 0° and 180° where that formula is well conditioned.
func TestAngleMatchesAcos(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for range 100 {
		a, b := make([]float32, 64), make([]float32, 64)
		for i := range a {
			a[i], b[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
		}
		var dot, na, nb float64
		for i := range a {
			dot += float64(a[i]) * float64(b[i])
			na += float64(a[i]) * float64(a[i])
			nb += float64(b[i]) * float64(b[i])
		}
		want := math.Acos(dot/math.Sqrt(na*nb)) * 180 / math.Pi
		got, _ := Angle(a, b)
		if math.Abs(got-want) > 1e-9 {
			t.Fatalf("angle %v, acos formula %v", got, want)
		}
	}
}

func TestCompute(t *testing.T) {
	// Reason gradients live in the first two coordinates, tool gradients in
	// the last two: every reason–tool angle is 90°. Samples 0 and 2 repeat the
	// same token set, so their reason–reason angle is 0°.
	samples := []Sample{
		{ID: "0", Reason: []float32{1, 2, 0, 0}, Tool: []float32{0, 0, 3, 0}},
		{ID: "1", Reason: []float32{2, -1, 0, 0}, Tool: []float32{0, 0, 1, 1}},
		{ID: "2", Reason: []float32{1, 2, 0, 0}, Tool: nil}, // no tool tokens
	}
	a, err := Compute(samples)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.ReasonTool) != 2 || len(a.ReasonReason) != 3 || len(a.ToolTool) != 1 || a.SkippedTool != 1 || a.SkippedReason != 0 {
		t.Fatalf("angles = %+v", a)
	}
	for _, x := range a.ReasonTool {
		if math.Abs(x-90) > 1e-12 {
			t.Errorf("reason–tool %v, want 90", x)
		}
	}
	// Pairs (0,1), (0,2), (1,2): (1,2)·(2,−1) = 0 → 90°, same → 0°, 90°.
	want := []float64{90, 0, 90}
	for i, w := range want {
		if math.Abs(a.ReasonReason[i]-w) > 1e-12 {
			t.Errorf("reason–reason %d = %v, want %v", i, a.ReasonReason[i], w)
		}
	}
	if math.Abs(a.ToolTool[0]-45) > 1e-12 {
		t.Errorf("tool–tool = %v, want 45", a.ToolTool[0])
	}
	s := a.Summarize()
	if s.ReasonTool.Mean != 90 || s.ReasonReason.N != 3 || s.SkippedTool != 1 {
		t.Errorf("summary = %+v", s)
	}
	path := filepath.Join(t.TempDir(), "angles.png")
	if err := a.WriteHistogram(path); err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(path)
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Error(err)
	}
	if _, err := Compute([]Sample{{Reason: []float32{1}}, {Reason: []float32{1, 2}}}); err == nil {
		t.Error("mismatched gradient lengths accepted")
	}
}

func TestFlatten(t *testing.T) {
	got := Flatten(map[string][]float32{"b": {3}, "a": {1, 2}, "c": nil})
	if len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Errorf("Flatten = %v", got)
	}
}

func BenchmarkAngle1M(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	x, y := make([]float32, 1<<20), make([]float32, 1<<20)
	for i := range x {
		x[i], y[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64())
	}
	b.SetBytes(8 << 20)
	for b.Loop() {
		Angle(x, y)
	}
}
