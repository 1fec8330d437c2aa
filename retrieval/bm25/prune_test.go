package bm25

import (
	"context"
	"testing"

	"github.com/dartc/dartc/retrieval/corpus"
	"github.com/dartc/dartc/retrieval/internal/synth"
)

// TestPruningIsExact checks that MaxScore pruning returns exactly what
// reading every posting returns (same passages, bit-identical scores) on the
// HotpotQA corpus and questions, and that it does prune.
func TestPruningIsExact(t *testing.T) {
	ix := openFile(t, buildFile(t, fixture(t, synth.HotpotCorpus), corpus.TitleText, DefaultParams))
	qs := readHotpot(t, fixture(t, synth.HotpotQuestions))
	queries := []string{"the of and a in", "the", "Romanian singer Inna", ""}
	for _, q := range qs {
		queries = append(queries, q.Question)
	}
	pruned := 0
	for _, q := range queries {
		for _, k := range []int{1, 3, 10, 100} {
			want, err := ix.searchOne(context.Background(), q, k, false)
			if err != nil {
				t.Fatal(err)
			}
			got, err := ix.searchOne(context.Background(), q, k, true)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("%q top %d: %d hits pruned, %d exhaustive", q, k, len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("%q top %d rank %d: pruned %+v, exhaustive %+v", q, k, i, got[i], want[i])
				}
			}
			if k == 3 && ix.wouldPrune(q, k) {
				pruned++
			}
		}
	}
	t.Logf("pruning applied to %d of %d top-3 queries", pruned, len(queries))
	if pruned < len(qs)/2 {
		t.Errorf("pruning applied to only %d of %d queries", pruned, len(queries))
	}
}

// wouldPrune reports whether searchOne stops reading postings early for q.
func (ix *Index) wouldPrune(q string, topk int) bool {
	s := ix.getScratch()
	defer ix.scratchPool.Put(s)
	terms := ix.queryTerms(s, q)
	rest := 0.0
	for _, qt := range terms {
		rest += qt.bound
	}
	defer func() {
		for _, d := range s.touched {
			s.acc[d] = 0
		}
		s.touched = s.touched[:0]
	}()
	for i, qt := range terms {
		if i > 0 && len(s.touched) >= topk && topHits(s.acc, s.touched, topk)[topk-1].Score > rest*boundSlack {
			return true
		}
		rest -= qt.bound
		ix.accumulate(s, qt.id, qt.df, qt.weight)
	}
	return false
}
