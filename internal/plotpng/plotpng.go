package plotpng

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"math"

	"github.com/dartc/dartc/internal/atomicfile"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Default figure size.
const (
	DefaultWidth  = 6 * vg.Inch
	DefaultHeight = 4 * vg.Inch
)

// Series is one named curve.
type Series struct {
	Name string
	X, Y []float64
}

// Curves describes a line plot of one or more series.
type Curves struct {
	Title, XLabel, YLabel string
	Series                []Series
	Width, Height         vg.Length // zero means the default size
}

// WriteCurves draws c to a PNG file at path.
func WriteCurves(path string, c Curves) error {
	if len(c.Series) == 0 {
		return fmt.Errorf("plotpng: %s: no series to draw", path)
	}
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = c.Title, c.XLabel, c.YLabel
	p.Add(plotter.NewGrid())
	for i, s := range c.Series {
		if len(s.X) != len(s.Y) {
			return fmt.Errorf("plotpng: %s: series %q has %d x values and %d y values", path, s.Name, len(s.X), len(s.Y))
		}
		xys := make(plotter.XYs, 0, len(s.X))
		for j := range s.X {
			if isFinite(s.X[j]) && isFinite(s.Y[j]) { // gonum rejects NaN/Inf points (and see isFinite)
				xys = append(xys, plotter.XY{X: s.X[j], Y: s.Y[j]})
			}
		}
		if len(xys) == 0 {
			continue
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return fmt.Errorf("plotpng: %s: series %q: %w", path, s.Name, err)
		}
		line.Color = plotutil.Color(i)
		line.Width = vg.Points(1.5)
		p.Add(line)
		if s.Name != "" {
			p.Legend.Add(s.Name, line)
		}
	}
	p.Legend.Top = true
	return save(path, p, c.Width, c.Height)
}

// HistSeries is one named set of values to histogram.
type HistSeries struct {
	Name   string
	Values []float64
}

// Histogram describes overlaid histograms that share bins.
type Histogram struct {
	Title, XLabel string
	Series        []HistSeries
	Bins          int
	// Lo and Hi fix the binned range; when both are zero the range of the
	// finite values is used.
	Lo, Hi        float64
	Width, Height vg.Length
}

// Counts is the result of Bin: Counts[i] values fell in bin i of Edges
// [Edges[i], Edges[i+1]); Dropped were NaN or outside the range.
type Counts struct {
	Edges   []float64
	Counts  []int
	Dropped int
}

// ErrNoRange is returned when no finite value fixes a histogram range.
var ErrNoRange = errors.New("plotpng: no finite values to bin")

// Bin counts values in n equal bins over [lo, hi]; the last bin includes hi.
func Bin(values []float64, lo, hi float64, n int) (Counts, error) {
	if n < 1 {
		return Counts{}, fmt.Errorf("plotpng: %d bins, need at least 1", n)
	}
	if !isFinite(lo) || !isFinite(hi) || !(lo < hi) {
		return Counts{}, fmt.Errorf("plotpng: bad range [%v, %v]: need finite lo < hi", lo, hi)
	}
	c := Counts{Edges: make([]float64, n+1), Counts: make([]int, n)}
	width := (hi - lo) / float64(n)
	for i := range c.Edges {
		c.Edges[i] = lo + (hi-lo)*float64(i)/float64(n) // i·(hi−lo)/n rounds as the decimal edges do
	}
	c.Edges[n] = hi
	for _, v := range values {
		if math.IsNaN(v) || v < lo || v > hi {
			c.Dropped++
			continue
		}
		i := int((v - lo) / width)
		if i >= n {
			i = n - 1
		}
		// Guard rounding at interior edges: keep the half-open rule exact.
		for i > 0 && v < c.Edges[i] {
			i--
		}
		for i < n-1 && v >= c.Edges[i+1] {
			i++
		}
		c.Counts[i]++
	}
	return c, nil
}

// Range returns the smallest and largest finite value over all series.
func (h Histogram) Range() (lo, hi float64, err error) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, s := range h.Series {
		for _, v := range s.Values {
			if isFinite(v) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if lo > hi {
		return 0, 0, ErrNoRange
	}
	if lo == hi { // one distinct value: give it a unit-wide bin range
		lo, hi = lo-0.5, hi+0.5
	}
	return lo, hi, nil
}

// WriteHistogram draws h to a PNG file at path and returns each series'
// counts, in series order.
func WriteHistogram(path string, h Histogram) ([]Counts, error) {
	if len(h.Series) == 0 {
		return nil, fmt.Errorf("plotpng: %s: no series to draw", path)
	}
	if h.Bins == 0 {
		h.Bins = 30
	}
	lo, hi := h.Lo, h.Hi
	if lo == 0 && hi == 0 {
		var err error
		if lo, hi, err = h.Range(); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	p := plot.New()
	p.Title.Text, p.X.Label.Text, p.Y.Label.Text = h.Title, h.XLabel, "count"
	p.Add(plotter.NewGrid())
	all := make([]Counts, len(h.Series))
	for i, s := range h.Series {
		c, err := Bin(s.Values, lo, hi, h.Bins)
		if err != nil {
			return nil, fmt.Errorf("%s: series %q: %w", path, s.Name, err)
		}
		all[i] = c
		bars := &plotter.Histogram{Width: (hi - lo) / float64(h.Bins), LineStyle: plotter.DefaultLineStyle}
		for j, n := range c.Counts {
			bars.Bins = append(bars.Bins, plotter.HistogramBin{Min: c.Edges[j], Max: c.Edges[j+1], Weight: float64(n)})
		}
		r, g, b, _ := plotutil.Color(i).RGBA()
		bars.FillColor = color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: 110} // see-through so overlaps show
		bars.LineStyle.Color = plotutil.Color(i)
		bars.LineStyle.Width = vg.Points(0.5)
		p.Add(bars)
		if s.Name != "" {
			p.Legend.Add(fmt.Sprintf("%s (n=%d)", s.Name, len(s.Values)-c.Dropped), bars)
		}
	}
	p.Legend.Top = true
	p.X.Min, p.X.Max = lo, hi
	if err := save(path, p, h.Width, h.Height); err != nil {
		return nil, err
	}
	return all, nil
}

// isFinite reports whether v can be drawn: not NaN or ±Inf, and within
// ±maxDrawable, so that the span of any two values stays finite (a span that
// overflows to +Inf sends gonum's tick search into an endless loop).
func isFinite(v float64) bool { return !math.IsNaN(v) && math.Abs(v) <= maxDrawable }

// maxDrawable bounds the values drawn; larger ones are left out like NaN.
const maxDrawable = 1e300

func save(path string, p *plot.Plot, w, h vg.Length) error {
	if w == 0 {
		w = DefaultWidth
	}
	if h == 0 {
		h = DefaultHeight
	}
	wt, err := p.WriterTo(w, h, "png")
	if err != nil {
		return fmt.Errorf("plotpng: render %s: %w", path, err)
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return fmt.Errorf("plotpng: render %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, buf.Bytes()); err != nil {
		return fmt.Errorf("plotpng: write %s: %w", path, err)
	}
	return nil
}
