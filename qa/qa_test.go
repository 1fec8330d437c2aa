package qa

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"testing"
)

type caseTable struct {
	Normalize [][2]string `json:"normalize"`
	Extract   [][3]any    `json:"extract"`
	Score     []struct {
		Pred  string   `json:"pred"`
		Golds []string `json:"golds"`
		Score
	} `json:"score"`
	Response []struct {
		Response string   `json:"response"`
		Golds    []string `json:"golds"`
		Score
	} `json:"response"`
}

// The table in testdata/cases.json is hand-computed and confirmed by
// check_cases.py against Python's definitions.
func loadCases(t *testing.T) caseTable {
	t.Helper()
	b, err := os.ReadFile("testdata/cases.json")
	if err != nil {
		t.Fatal(err)
	}
	var c caseTable
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if len(c.Normalize) == 0 || len(c.Extract) == 0 || len(c.Score) == 0 || len(c.Response) == 0 {
		t.Fatal("empty case table")
	}
	return c
}

func TestNormalize(t *testing.T) {
	for _, c := range loadCases(t).Normalize {
		if got := Normalize(c[0]); got != c[1] {
			t.Errorf("Normalize(%q) = %q, want %q", c[0], got, c[1])
		}
	}
}

func TestExtractAnswer(t *testing.T) {
	for _, c := range loadCases(t).Extract {
		in, want, wantOK := c[0].(string), c[1].(string), c[2].(bool)
		got, ok := ExtractAnswer(in)
		if got != want || ok != wantOK {
			t.Errorf("ExtractAnswer(%q) = %q, %v; want %q, %v", in, got, ok, want, wantOK)
		}
	}
}

func close(a, b Score) bool {
	const tol = 1e-12
	return math.Abs(a.EM-b.EM) < tol && math.Abs(a.F1-b.F1) < tol && math.Abs(a.SubEM-b.SubEM) < tol
}

func TestScorePrediction(t *testing.T) {
	for _, c := range loadCases(t).Score {
		if got := ScorePrediction(c.Pred, c.Golds); !close(got, c.Score) {
			t.Errorf("ScorePrediction(%q, %q) = %+v, want %+v", c.Pred, c.Golds, got, c.Score)
		}
	}
}

func TestScoreResponse(t *testing.T) {
	for _, c := range loadCases(t).Response {
		if got := ScoreResponse(c.Response, c.Golds); !close(got, c.Score) {
			t.Errorf("ScoreResponse(%q, %q) = %+v, want %+v", c.Response, c.Golds, got, c.Score)
		}
	}
}

func TestF1Symmetric(t *testing.T) {
	// Token F1 is symmetric in prediction and gold for one gold.
	pairs := [][2]string{{"a b c d", "c d e"}, {"x y y", "y"}, {"Paris France", "france"}}
	for _, p := range pairs {
		if a, b := F1(p[0], []string{p[1]}), F1(p[1], []string{p[0]}); math.Abs(a-b) > 1e-15 {
			t.Errorf("F1 not symmetric on %q: %v vs %v", p, a, b)
		}
	}
}

func ExampleScoreResponse() {
	s := ScoreResponse("<think>…</think><answer> The Beatles! </answer>", []string{"Beatles", "the fab four"})
	fmt.Println(s.EM, s.F1, s.SubEM)
	// Output: 1 1 1
}

func FuzzNormalizeIdempotent(f *testing.F) {
	for _, s := range []string{"The Beatles", "ΟΔΟΣ", "a an the", "İstanbul", "x\u001cy"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n := Normalize(s)
		if Normalize(n) != n {
			t.Fatalf("Normalize not idempotent on %q: %q -> %q", s, n, Normalize(n))
		}
	})
}
