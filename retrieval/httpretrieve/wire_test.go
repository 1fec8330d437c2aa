package httpretrieve

import (
	"bytes"
	"os"
	"testing"

	"github.com/dartc/dartc/retrieval"
)

// The golden files are CPython's json.dumps output for the same passages
// (testdata/gen_golden.py), i.e. what Search-R1's FastAPI server sends.
func TestResponseMatchesFastAPI(t *testing.T) {
	tenth, fifth := 0.1, 0.2 // added at run time, as Python does
	ps := []retrieval.Passage{
		{ID: "0", Contents: "\"Evan Morris\"\nEvan L. Morris (January 26, 1977 \u2013 July 9, 2015) was a lobbyist.", Score: 12.5},
		{ID: "17", Contents: "\"Caf\u00e9 <&>\"\nTabs\tand \\backslashes\\ and \"quotes\" and \x01\x1f\x7f and \u2028\u2029 and \U0001F600", Score: 1.0},
		{ID: "x-2", Contents: "\"T\"\n", Score: tenth + fifth},
		{ID: "3", Contents: "no title line", Score: 1e-05},
		{ID: "4", Contents: "\"Big\"\nb", Score: 1.2345678901234567e17},
		{ID: "5", Contents: "\"Sci\"\ns", Score: 1e16},
		{ID: "6", Contents: "\"Pos\"\np", Score: 1e15},
		{ID: "7", Contents: "\"Small\"\ns", Score: 0.0001},
		{ID: "8", Contents: "\"Tiny\"\nt", Score: 1.5e-7},
		{ID: "9", Contents: "\"Neg\"\nn", Score: -2.25},
		{ID: "10", Contents: "\"Zero\"\nz", Score: 0.0},
		{ID: "11", Contents: "\"F32\"\nf", Score: 0.8123456835746765},
	}
	results := [][]retrieval.Passage{ps[:6], ps[6:], {}}
	for _, c := range []struct {
		golden     string
		withScores bool
	}{{"testdata/response_scores.golden.json", true}, {"testdata/response_noscores.golden.json", false}} {
		want, err := os.ReadFile(c.golden)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendResponse(nil, results, c.withScores)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs:\n got %s\nwant %s", c.golden, got, want)
		}
	}
}

func TestPyFloat(t *testing.T) {
	// Python 3: repr(x) for each x.
	cases := map[float64]string{
		1: "1.0", 100: "100.0", 0.5: "0.5", 123.456: "123.456", 1e22: "1e+22", 1.5e300: "1.5e+300",
		5e-324: "5e-324", 0.001: "0.001", 0.00012: "0.00012", 1.2e-5: "1.2e-05", 9999999999999998: "9999999999999998.0",
		-1e-7: "-1e-07", 2.5e16: "2.5e+16",
	}
	for f, want := range cases {
		if got := string(appendPyFloat(nil, f)); got != want {
			t.Errorf("appendPyFloat(%v) = %s, want %s", f, got, want)
		}
	}
}

// request.golden.json is what Search-R1's trainer sends (Python's
// json.dumps defaults, through requests.post(json=...)).
func TestRequestMatchesSearchR1(t *testing.T) {
	want, err := os.ReadFile("testdata/request.golden.json")
	if err != nil {
		t.Fatal(err)
	}
	got := appendRequest(nil, []string{"who wrote hamlet", "Caf\u00e9 \"quoted\" \\ \n\t\x01 \u2013 \U0001F600", ""}, 3)
	if !bytes.Equal(got, want) {
		t.Errorf("request differs:\n got %s\nwant %s", got, want)
	}
}
