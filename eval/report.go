package eval

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/dartc/dartc/internal/atomicfile"

	"github.com/dartc/dartc/qa"
)

// paperOrder lists the benchmarks in the order of the paper's table, each
// with the short names it is known by and its column title.
var paperOrder = []struct {
	title   string
	aliases []string
}{
	{"NQ", []string{"nq", "naturalquestions"}},
	{"TriviaQA", []string{"triviaqa", "tqa"}},
	{"PopQA", []string{"popqa"}},
	{"HotpotQA", []string{"hotpotqa"}},
	{"2Wiki", []string{"2wiki", "2wikimultihopqa"}},
	{"MuSiQue", []string{"musique"}},
	{"Bamboogle", []string{"bamboogle"}},
}

// ColumnTitle returns the table title of a dataset short name: the paper's
// spelling for the seven benchmarks, the name itself otherwise.
func ColumnTitle(source string) string {
	if i := paperIndex(source); i >= 0 {
		return paperOrder[i].title
	}
	return source
}

func paperIndex(source string) int {
	s := strings.ToLower(source)
	for i, p := range paperOrder {
		if slices.Contains(p.aliases, s) {
			return i
		}
	}
	return -1
}

// SortColumns orders dataset names as the paper does; names it does not
// know keep their relative order after the known ones.
func SortColumns(sources []string) []string {
	out := slices.Clone(sources)
	slices.SortStableFunc(out, func(a, b string) int {
		ia, ib := paperIndex(a), paperIndex(b)
		if ia < 0 {
			ia = len(paperOrder)
		}
		if ib < 0 {
			ib = len(paperOrder)
		}
		return ia - ib
	})
	return out
}

// Row is one line of a Table: a method or a metric, with a value per
// dataset (absent datasets are missing from Values).
type Row struct {
	Name   string             `json:"name"`
	Values map[string]float64 `json:"values"`
	Count  map[string]int     `json:"count,omitempty"` // questions behind each value
}

// Average is the unweighted mean of the row's values over columns, NaN when
// it has none.
func (r Row) Average(columns []string) float64 {
	sum, n := 0.0, 0
	for _, c := range columns {
		if v, ok := r.Values[c]; ok {
			sum += v
			n++
		}
	}
	if n == 0 {
		return math.NaN()
	}
	return sum / float64(n)
}

// Table is the paper-shaped results table: one column per dataset and the
// average, one row per method (or per metric).
type Table struct {
	Title   string   `json:"title,omitempty"`
	Metric  string   `json:"metric,omitempty"`
	Columns []string `json:"columns"` // dataset short names, in display order
	Rows    []Row    `json:"rows"`
}

func formatValue(v float64, ok bool) string {
	if !ok || math.IsNaN(v) {
		return "–"
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// WriteMarkdown writes the table as a GitHub Markdown table with three
// decimals; a missing value is shown as an en dash.
func (t *Table) WriteMarkdown(w io.Writer) error {
	var b bytes.Buffer
	if t.Title != "" {
		fmt.Fprintf(&b, "**%s**\n\n", t.Title)
	}
	head := []string{t.Metric}
	for _, c := range t.Columns {
		head = append(head, ColumnTitle(c))
	}
	head = append(head, "Avg")
	b.WriteString("| " + strings.Join(head, " | ") + " |\n")
	b.WriteString("|---" + strings.Repeat("|---:", len(head)-1) + "|\n")
	for _, r := range t.Rows {
		cells := []string{r.Name}
		for _, c := range t.Columns {
			v, ok := r.Values[c]
			cells = append(cells, formatValue(v, ok))
		}
		cells = append(cells, formatValue(r.Average(t.Columns), true))
		b.WriteString("| " + strings.Join(cells, " | ") + " |\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}

// WriteCSV writes the table as CSV with full precision; a missing value is
// an empty cell.
func (t *Table) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	head := append([]string{"name"}, t.Columns...)
	if err := cw.Write(append(head, "avg")); err != nil {
		return err
	}
	for _, r := range t.Rows {
		rec := []string{r.Name}
		for _, c := range t.Columns {
			if v, ok := r.Values[c]; ok {
				rec = append(rec, strconv.FormatFloat(v, 'g', -1, 64))
			} else {
				rec = append(rec, "")
			}
		}
		avg := r.Average(t.Columns)
		if math.IsNaN(avg) {
			rec = append(rec, "")
		} else {
			rec = append(rec, strconv.FormatFloat(avg, 'g', -1, 64))
		}
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// MarshalJSON adds each row's average to the JSON form.
func (t *Table) MarshalJSON() ([]byte, error) {
	type row struct {
		Row
		Average *float64 `json:"average"`
	}
	type table struct {
		Title   string   `json:"title,omitempty"`
		Metric  string   `json:"metric,omitempty"`
		Columns []string `json:"columns"`
		Rows    []row    `json:"rows"`
	}
	out := table{Title: t.Title, Metric: t.Metric, Columns: t.Columns, Rows: []row{}}
	for _, r := range t.Rows {
		var avg *float64
		if a := r.Average(t.Columns); !math.IsNaN(a) {
			avg = &a
		}
		out.Rows = append(out.Rows, row{Row: r, Average: avg})
	}
	return json.Marshal(out)
}

// Save writes prefix.md, prefix.csv and prefix.json, each atomically.
func (t *Table) Save(prefix string) error {
	var md, cs bytes.Buffer
	if err := t.WriteMarkdown(&md); err != nil {
		return err
	}
	if err := t.WriteCSV(&cs); err != nil {
		return err
	}
	js, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return fmt.Errorf("eval: encode table: %w", err)
	}
	for ext, b := range map[string][]byte{".md": md.Bytes(), ".csv": cs.Bytes(), ".json": append(js, '\n')} {
		if err := atomicfile.WriteFile(prefix+ext, b); err != nil {
			return fmt.Errorf("eval: write %s: %w", prefix+ext, err)
		}
	}
	return nil
}

// Scoreboard accumulates per-question scores by dataset.
type Scoreboard struct {
	sources []string // first-seen order
	sum     map[string]qa.Score
	n       map[string]int
}

// Add records one question's score under its dataset.
func (b *Scoreboard) Add(source string, s qa.Score) {
	if b.sum == nil {
		b.sum, b.n = map[string]qa.Score{}, map[string]int{}
	}
	if _, ok := b.n[source]; !ok {
		b.sources = append(b.sources, source)
	}
	t := b.sum[source]
	t.EM += s.EM
	t.F1 += s.F1
	t.SubEM += s.SubEM
	b.sum[source] = t
	b.n[source]++
}

// Sources returns the datasets seen, in the paper's order.
func (b *Scoreboard) Sources() []string { return SortColumns(b.sources) }

// Mean returns a dataset's mean score and its number of questions.
func (b *Scoreboard) Mean(source string) (qa.Score, int) {
	n := b.n[source]
	if n == 0 {
		return qa.Score{}, 0
	}
	s := b.sum[source]
	return qa.Score{EM: s.EM / float64(n), F1: s.F1 / float64(n), SubEM: s.SubEM / float64(n)}, n
}

// Overall returns the mean over all questions (each question weighs the
// same, unlike the table's average over datasets).
func (b *Scoreboard) Overall() (qa.Score, int) {
	var s qa.Score
	total := 0
	for src, n := range b.n {
		t := b.sum[src]
		s.EM, s.F1, s.SubEM = s.EM+t.EM, s.F1+t.F1, s.SubEM+t.SubEM
		total += n
	}
	if total == 0 {
		return s, 0
	}
	f := float64(total)
	return qa.Score{EM: s.EM / f, F1: s.F1 / f, SubEM: s.SubEM / f}, total
}

// MetricRow returns a table row named name holding one metric ("em", "f1"
// or "subem") per dataset.
func (b *Scoreboard) MetricRow(name, metric string) (Row, error) {
	r := Row{Name: name, Values: map[string]float64{}, Count: map[string]int{}}
	for _, src := range b.sources {
		m, n := b.Mean(src)
		switch metric {
		case "em":
			r.Values[src] = m.EM
		case "f1":
			r.Values[src] = m.F1
		case "subem":
			r.Values[src] = m.SubEM
		default:
			return Row{}, fmt.Errorf("eval: unknown metric %q (want em, f1 or subem)", metric)
		}
		r.Count[src] = n
	}
	return r, nil
}

// MetricsTable returns a table with one row per metric (EM, F1, substring
// EM) and one column per dataset.
func (b *Scoreboard) MetricsTable(title string) *Table {
	t := &Table{Title: title, Metric: "metric", Columns: b.Sources()}
	for _, m := range [][2]string{{"EM", "em"}, {"F1", "f1"}, {"SubEM", "subem"}} {
		r, _ := b.MetricRow(m[0], m[1]) // metric names are the known ones
		t.Rows = append(t.Rows, r)
	}
	return t
}
