package bm25

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/dartc/dartc/retrieval/corpus"
	"github.com/dartc/dartc/retrieval/internal/synth"
)

// hotpotQuestion is a row of synth.HotpotQuestions: a question and the
// titles of its two gold paragraphs (titles are unique in the corpus).
type hotpotQuestion struct {
	ID       string   `json:"id"`
	Question string   `json:"question"`
	Gold     []string `json:"gold"`
}

func readHotpot(t testing.TB, path string) []hotpotQuestion {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var qs []hotpotQuestion
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var q hotpotQuestion
		if err := json.Unmarshal(sc.Bytes(), &q); err != nil {
			t.Fatal(err)
		}
		qs = append(qs, q)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return qs
}

// TestHotpotQARecall measures retrieval on HotpotQA (distractor) questions
// over the 4,968 paragraphs that contain their gold paragraphs: the fraction
// of questions with a gold paragraph in the top 3 (what the agent sees with
// Search-R1's topk = 3), and with both gold paragraphs in the top 10.
func TestHotpotQARecall(t *testing.T) {
	ix := openFile(t, buildFile(t, fixture(t, synth.HotpotCorpus), corpus.TitleText, DefaultParams))
	if ix.Len() != 4968 {
		t.Fatalf("%d passages, want 4968", ix.Len())
	}
	byTitle := make(map[string]int, ix.Len())
	for d := 0; d < ix.Len(); d++ {
		_, contents, err := ix.Doc(d)
		if err != nil {
			t.Fatal(err)
		}
		title, _, _ := strings.Cut(contents, "\n")
		byTitle[strings.Trim(title, "\"")] = d
	}
	qs := readHotpot(t, fixture(t, synth.HotpotQuestions))
	if len(qs) != 500 {
		t.Fatalf("%d questions, want 500", len(qs))
	}
	var anyTop3, bothTop10 int
	for _, q := range qs {
		var gold []int
		for _, title := range q.Gold {
			d, ok := byTitle[title]
			if !ok {
				t.Fatalf("question %s: gold paragraph %q is not in the corpus", q.ID, title)
			}
			gold = append(gold, d)
		}
		if len(gold) != 2 {
			t.Fatalf("question %s has %d gold paragraphs, want 2", q.ID, len(gold))
		}
		hits, err := ix.SearchOne(q.Question, 10)
		if err != nil {
			t.Fatal(err)
		}
		rank := map[int]int{}
		for i, h := range hits {
			rank[h.Doc] = i + 1
		}
		r0, ok0 := rank[gold[0]]
		r1, ok1 := rank[gold[1]]
		if (ok0 && r0 <= 3) || (ok1 && r1 <= 3) {
			anyTop3++
		}
		if ok0 && ok1 {
			bothTop10++
		}
	}
	fAny, fBoth := float64(anyTop3)/float64(len(qs)), float64(bothTop10)/float64(len(qs))
	t.Logf("HotpotQA distractor-500, BM25 k1=%.1f b=%.1f: gold in top 3 = %d/%d (%.3f); both gold in top 10 = %d/%d (%.3f)",
		DefaultParams.K1, DefaultParams.B, anyTop3, len(qs), fAny, bothTop10, len(qs), fBoth)
	// Sanity bounds well below the measured figures (docs/retrieval.md): a
	// broken analyzer or scorer falls far under them.
	if fAny < 0.85 || fBoth < 0.60 {
		t.Errorf("recall too low: top-3 any-gold %.3f (want ≥ 0.85), top-10 both-gold %.3f (want ≥ 0.60)", fAny, fBoth)
	}
}
