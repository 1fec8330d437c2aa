package plotpng

import (
	"image/png"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestBin(t *testing.T) {
	// Hand-counted: bins [0,1) [1,2) [2,3) [3,4]; 4 lands in the last bin,
	// -1, 5 and NaN are dropped.
	c, err := Bin([]float64{0, 0.5, 1, 1.999, 2, 3, 4, -1, 5, math.NaN()}, 0, 4, 4)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{2, 2, 1, 2}; !reflect.DeepEqual(c.Counts, want) {
		t.Errorf("counts = %v, want %v", c.Counts, want)
	}
	if c.Dropped != 3 {
		t.Errorf("dropped = %d, want 3", c.Dropped)
	}
	if want := []float64{0, 1, 2, 3, 4}; !reflect.DeepEqual(c.Edges, want) {
		t.Errorf("edges = %v", c.Edges)
	}
	// Edges that are not exact in binary: 0.3 must go to bin [0.3, 0.4).
	c, _ = Bin([]float64{0.3, 0.7, 0.1}, 0, 1, 10)
	if c.Counts[3] != 1 || c.Counts[7] != 1 || c.Counts[1] != 1 {
		t.Errorf("counts at inexact edges = %v", c.Counts)
	}
	for _, bad := range [][3]float64{{1, 1, 3}, {0, math.Inf(1), 3}, {0, 1, 0}} {
		if _, err := Bin(nil, bad[0], bad[1], int(bad[2])); err == nil {
			t.Errorf("Bin range %v accepted", bad)
		}
	}
}

func checkPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s is not a PNG: %v", path, err)
	}
	b := img.Bounds()
	if b.Dx() < 300 || b.Dy() < 200 {
		t.Errorf("image is %dx%d, too small for the default size", b.Dx(), b.Dy())
	}
	colors := map[uint32]bool{}
	for y := b.Min.Y; y < b.Max.Y; y += 3 {
		for x := b.Min.X; x < b.Max.X; x += 3 {
			r, g, bl, _ := img.At(x, y).RGBA()
			colors[r>>8<<16|g>>8<<8|bl>>8] = true
		}
	}
	if len(colors) < 3 {
		t.Errorf("image has %d colours: nothing drawn?", len(colors))
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	for _, e := range entries {
		if e.Name() != filepath.Base(path) && filepath.Ext(e.Name()) != ".png" {
			t.Errorf("leftover file %s", e.Name())
		}
	}
}

func TestWriteCurves(t *testing.T) {
	path := filepath.Join(t.TempDir(), "curves.png")
	x := []float64{0, 1, 2, 3, math.NaN()}
	err := WriteCurves(path, Curves{Title: "reward", XLabel: "step", YLabel: "EM", Series: []Series{
		{Name: "dual", X: x, Y: []float64{0.1, 0.2, 0.25, 0.3, 1}},
		{Name: "single", X: x, Y: []float64{0.1, 0.15, 0.2, 0.22, 1}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	checkPNG(t, path)
	if err := WriteCurves(path, Curves{Series: []Series{{X: []float64{1}, Y: nil}}}); err == nil {
		t.Error("mismatched series accepted")
	}
	// Values whose span overflows (1e308 − (−1e308) = +Inf) used to hang
	// gonum's tick search; they are left out like NaN.
	done := make(chan error, 1)
	go func() {
		done <- WriteCurves(path, Curves{Series: []Series{{Name: "grad norm", X: []float64{1, 2, 3}, Y: []float64{1e308, -1e308, 2}}}})
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		checkPNG(t, path)
	case <-time.After(time.Minute):
		t.Fatal("WriteCurves did not return for values whose span overflows")
	}
}

func TestWriteHistogram(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hist.png")
	counts, err := WriteHistogram(path, Histogram{Title: "angles", XLabel: "degrees", Bins: 18, Lo: 0, Hi: 180, Series: []HistSeries{
		{Name: "reason-tool", Values: []float64{88, 89, 90, 91, 92}},
		{Name: "reason-reason", Values: []float64{20, 30, 40}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	checkPNG(t, path)
	if counts[0].Counts[8] != 2 || counts[0].Counts[9] != 3 || counts[1].Counts[2]+counts[1].Counts[3]+counts[1].Counts[4] != 3 {
		t.Errorf("counts = %v / %v", counts[0].Counts, counts[1].Counts)
	}
	// Automatic range from the data; one distinct value still draws.
	if _, err := WriteHistogram(path, Histogram{Series: []HistSeries{{Values: []float64{2, 2}}}}); err != nil {
		t.Error(err)
	}
	if _, err := WriteHistogram(path, Histogram{Series: []HistSeries{{Values: []float64{math.NaN()}}}}); err == nil {
		t.Error("no finite values accepted")
	}
}
