package eval

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/dartc/dartc/qa"
)

func paperTable() *Table {
	// Two rows of the Search-R1 paper's Qwen2.5-3B table (search-r1-grpo-peft.md §1.6),
	// columns given out of order on purpose.
	cols := SortColumns([]string{"bamboogle", "nq", "musique", "triviaqa", "2wiki", "popqa", "hotpotqa"})
	return &Table{Metric: "EM", Columns: cols, Rows: []Row{
		{Name: "Search-R1-base (GRPO)", Values: map[string]float64{"nq": 0.421, "triviaqa": 0.583, "popqa": 0.413, "hotpotqa": 0.297, "2wiki": 0.274, "musique": 0.066, "bamboogle": 0.128}},
		{Name: "RAG baseline", Values: map[string]float64{"nq": 0.348, "triviaqa": 0.544, "popqa": 0.387, "hotpotqa": 0.255, "2wiki": 0.226, "musique": 0.047}},
	}}
}

func TestSortColumns(t *testing.T) {
	got := SortColumns([]string{"mine", "bamboogle", "NQ", "other", "2wikimultihopqa"})
	if want := []string{"NQ", "2wikimultihopqa", "bamboogle", "mine", "other"}; !reflect.DeepEqual(got, want) {
		t.Errorf("SortColumns = %v, want %v", got, want)
	}
}

func TestTableMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := paperTable().WriteMarkdown(&b); err != nil {
		t.Fatal(err)
	}
	// The paper's average for this row is 0.312 (2.182/7 = 0.3117…); the second
	// row has no Bamboogle, so its average is over six columns: 1.807/6 = 0.30116….
	want := "| EM | NQ | TriviaQA | PopQA | HotpotQA | 2Wiki | MuSiQue | Bamboogle | Avg |\n" +
		"|---|---:|---:|---:|---:|---:|---:|---:|---:|\n" +
		"| Search-R1-base (GRPO) | 0.421 | 0.583 | 0.413 | 0.297 | 0.274 | 0.066 | 0.128 | 0.312 |\n" +
		"| RAG baseline | 0.348 | 0.544 | 0.387 | 0.255 | 0.226 | 0.047 | – | 0.301 |\n"
	if b.String() != want {
		t.Errorf("markdown:\n%s\nwant:\n%s", b.String(), want)
	}
}

func TestTableCSVAndJSON(t *testing.T) {
	tab := paperTable()
	var b bytes.Buffer
	if err := tab.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(b.Bytes()), []byte("\n"))
	if string(lines[0]) != "name,nq,triviaqa,popqa,hotpotqa,2wiki,musique,bamboogle,avg" {
		t.Errorf("csv header = %s", lines[0])
	}
	if !bytes.HasPrefix(lines[2], []byte("RAG baseline,0.348,0.544,0.387,0.255,0.226,0.047,,0.3011")) {
		t.Errorf("csv row = %s", lines[2])
	}
	js, err := json.Marshal(tab)
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Columns []string
		Rows    []struct {
			Name    string
			Values  map[string]float64
			Average float64
		}
	}
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if math.Abs(back.Rows[0].Average-2.182/7) > 1e-12 || back.Rows[1].Values["nq"] != 0.348 || len(back.Columns) != 7 {
		t.Errorf("json = %s", js)
	}
}

func TestSave(t *testing.T) {
	dir := t.TempDir()
	if err := paperTable().Save(filepath.Join(dir, "report")); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"report.csv", "report.json", "report.md"}; !reflect.DeepEqual(names, want) {
		t.Errorf("files = %v, want %v (no temp files)", names, want)
	}
	if err := paperTable().Save(filepath.Join(dir, "missing", "report")); err == nil {
		t.Error("save into a missing directory succeeded")
	}
}

func TestScoreboard(t *testing.T) {
	var b Scoreboard
	b.Add("bamboogle", qa.Score{EM: 1, F1: 1, SubEM: 1})
	b.Add("nq", qa.Score{EM: 0, F1: 0.5, SubEM: 1})
	b.Add("nq", qa.Score{EM: 1, F1: 1, SubEM: 1})
	b.Add("nq", qa.Score{EM: 0, F1: 0, SubEM: 0})
	if got := b.Sources(); !reflect.DeepEqual(got, []string{"nq", "bamboogle"}) {
		t.Errorf("sources = %v", got)
	}
	m, n := b.Mean("nq")
	if n != 3 || math.Abs(m.EM-1.0/3) > 1e-15 || math.Abs(m.F1-0.5) > 1e-15 || math.Abs(m.SubEM-2.0/3) > 1e-15 {
		t.Errorf("nq mean = %+v over %d", m, n)
	}
	all, total := b.Overall() // per question: EM 2/4, F1 2.5/4, SubEM 3/4
	if total != 4 || all.EM != 0.5 || all.F1 != 0.625 || all.SubEM != 0.75 {
		t.Errorf("overall = %+v over %d", all, total)
	}
	tab := b.MetricsTable("")
	// Table average is over datasets: EM (1/3 + 1)/2 = 2/3.
	if avg := tab.Rows[0].Average(tab.Columns); tab.Rows[0].Name != "EM" || math.Abs(avg-2.0/3) > 1e-15 {
		t.Errorf("EM row %+v average %v", tab.Rows[0], avg)
	}
	if _, err := b.MetricRow("x", "bleu"); err == nil {
		t.Error("unknown metric accepted")
	}
}
