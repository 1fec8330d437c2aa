package bm25

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"unicode"

	"github.com/dartc/dartc/retrieval/corpus"
)

const smallCorpus = "../testdata/small.jsonl"

// buildFile builds an index of a JSONL corpus into a temporary directory.
func buildFile(t testing.TB, corpusPath string, format corpus.Format, p Params) string {
	t.Helper()
	f, err := os.Open(corpusPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := corpus.NewReader(f, format)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "index.bm25")
	if _, err := Build(context.Background(), r, out, p); err != nil {
		t.Fatal(err)
	}
	return out
}

func openFile(t testing.TB, path string) *Index {
	t.Helper()
	ix, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// referenceScores computes BM25 for every passage of the small corpus
// directly from the formula, with its own tokenizer (the corpus is plain
// ASCII words, where any sensible word split agrees).
func referenceScores(t *testing.T, query string, p Params) map[int]float64 {
	t.Helper()
	data, err := os.ReadFile(smallCorpus)
	if err != nil {
		t.Fatal(err)
	}
	split := func(s string) []string {
		return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	}
	var docs [][]string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var row struct{ Contents string }
		if err := json.Unmarshal([]byte(line), &row); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, split(row.Contents))
	}
	N := float64(len(docs))
	var total float64
	for _, d := range docs {
		total += float64(len(d))
	}
	avgdl := total / N
	scores := map[int]float64{}
	for _, term := range split(query) { // a repeated query term counts again
		n := 0.0
		for _, d := range docs {
			for _, w := range d {
				if w == term {
					n++
					break
				}
			}
		}
		if n == 0 {
			continue
		}
		idf := math.Log((N-n+0.5)/(n+0.5) + 1)
		for i, d := range docs {
			f := 0.0
			for _, w := range d {
				if w == term {
					f++
				}
			}
			if f > 0 {
				scores[i] += idf * f / (f + p.K1*(1-p.B) + p.K1*p.B*float64(len(d))/avgdl)
			}
		}
	}
	return scores
}

func TestScoresMatchFormula(t *testing.T) {
	for _, p := range []Params{DefaultParams, {K1: 1.2, B: 0.75}, {K1: 0.5, B: 0}, {K1: 2, B: 1}} {
		ix := openFile(t, buildFile(t, smallCorpus, corpus.FlashRAG, p))
		if ix.Params() != p {
			t.Fatalf("stored params %+v, want %+v", ix.Params(), p)
		}
		for _, q := range []string{"apple pie", "Apple apple crust", "plum trees fruit", "computers", "water liquid", "the", "zebra", "pie chart circle slices"} {
			want := referenceScores(t, q, p)
			hits, err := ix.SearchOne(q, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(hits) != len(want) {
				t.Errorf("%+v %q: %d hits, reference has %d", p, q, len(hits), len(want))
			}
			for _, h := range hits {
				if math.Abs(h.Score-want[h.Doc]) > 1e-6 {
					t.Errorf("%+v %q: passage %d score %.9f, reference %.9f", p, q, h.Doc, h.Score, want[h.Doc])
				}
			}
			// Order: reference scores descending, passage order on ties.
			order := make([]int, 0, len(want))
			for d := range want {
				order = append(order, d)
			}
			sort.Slice(order, func(i, j int) bool {
				a, b := order[i], order[j]
				if math.Abs(want[a]-want[b]) > 1e-12 {
					return want[a] > want[b]
				}
				return a < b
			})
			for i := range hits {
				if i < len(order) && hits[i].Doc != order[i] {
					t.Errorf("%+v %q: rank %d is passage %d, reference ranks passage %d", p, q, i, hits[i].Doc, order[i])
					break
				}
			}
		}
	}
}

func TestTiesRankByPassageOrder(t *testing.T) {
	ix := openFile(t, buildFile(t, smallCorpus, corpus.FlashRAG, DefaultParams))
	hits, err := ix.SearchOne("apple pie filling", 2)
	if err != nil {
		t.Fatal(err)
	}
	// d0 and d8 are identical passages: equal scores, d0 first.
	if len(hits) != 2 || hits[0].Doc != 0 || hits[1].Doc != 8 || hits[0].Score != hits[1].Score {
		t.Fatalf("hits = %+v, want passages 0 then 8 with equal scores", hits)
	}
	hits, _ = ix.SearchOne("apple pie filling", 1)
	if len(hits) != 1 || hits[0].Doc != 0 {
		t.Fatalf("top-1 = %+v, want passage 0", hits)
	}
}

func TestDeterministic(t *testing.T) {
	a := buildFile(t, smallCorpus, corpus.FlashRAG, DefaultParams)
	b := buildFile(t, smallCorpus, corpus.FlashRAG, DefaultParams)
	da, _ := os.ReadFile(a)
	db, _ := os.ReadFile(b)
	if !bytes.Equal(da, db) {
		t.Fatal("two builds of the same corpus differ")
	}
	ix := openFile(t, a)
	queries := []string{"apple pie", "plum trees fruit", "computers data", "a the of", "California orchards"}
	want, err := ix.Search(context.Background(), queries, 5)
	if err != nil {
		t.Fatal(err)
	}
	// The batch, spread over goroutines, keeps query order.
	for q := range queries {
		one, _ := ix.Search(context.Background(), queries[q:q+1], 5)
		if len(one[0]) != len(want[q]) || (len(one[0]) > 0 && one[0][0] != want[q][0]) {
			t.Fatalf("query %q alone gives %+v, in the batch %+v", queries[q], one[0], want[q])
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				got, err := ix.Search(context.Background(), queries, 5)
				if err != nil {
					errs <- err
					return
				}
				for q := range got {
					for k := range got[q] {
						if got[q][k] != want[q][k] {
							errs <- errors.New("concurrent search gave a different ranking")
							return
						}
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestSearchResults(t *testing.T) {
	ix := openFile(t, buildFile(t, smallCorpus, corpus.FlashRAG, DefaultParams))
	if ix.Len() != 12 {
		t.Fatalf("Len = %d, want 12", ix.Len())
	}
	res, err := ix.Search(context.Background(), []string{"pastry dough", "", "zebra"}, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || len(res[1]) != 0 || len(res[2]) != 0 {
		t.Fatalf("results = %+v", res)
	}
	if res[0][0].ID != "d5" || !strings.HasPrefix(res[0][0].Contents, "\"Pastry\"\nPastry is dough") {
		t.Errorf("top passage for 'pastry dough' = %+v, want d5", res[0][0])
	}
	if _, err := ix.Search(context.Background(), []string{"x"}, 0); err == nil {
		t.Error("topk 0 accepted")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ix.Search(ctx, []string{"apple"}, 3); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled search err = %v", err)
	}
}

func TestBuildRejectsBadInput(t *testing.T) {
	dir := t.TempDir()
	empty, _ := corpus.NewReader(strings.NewReader("\n"), corpus.FlashRAG)
	if _, err := Build(context.Background(), empty, filepath.Join(dir, "x"), DefaultParams); err == nil || !strings.Contains(err.Error(), "no passages") {
		t.Errorf("empty corpus err = %v", err)
	}
	bad, _ := corpus.NewReader(strings.NewReader("{\"id\":\"1\",\"contents\":\"a\"}\nnot json\n"), corpus.FlashRAG)
	if _, err := Build(context.Background(), bad, filepath.Join(dir, "y"), DefaultParams); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("bad row err = %v", err)
	}
	ok, _ := corpus.NewReader(strings.NewReader("{\"id\":\"1\",\"contents\":\"a\"}\n"), corpus.FlashRAG)
	if _, err := Build(context.Background(), ok, filepath.Join(dir, "z"), Params{K1: 0.9, B: 2}); err == nil {
		t.Error("b = 2 accepted")
	}
	late, _ := corpus.NewReader(strings.NewReader(strings.Repeat("{\"id\":\"1\",\"contents\":\"a\"}\n", 599)+"{\"id\": 1}\n"), corpus.FlashRAG)
	if _, err := Build(context.Background(), late, filepath.Join(dir, "l"), DefaultParams); err == nil || !strings.Contains(err.Error(), "line 600") {
		t.Errorf("bad row 600 err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	big, _ := corpus.NewReader(strings.NewReader(strings.Repeat("{\"id\":\"1\",\"contents\":\"a b\"}\n", 2000)), corpus.FlashRAG)
	if _, err := Build(ctx, big, filepath.Join(dir, "c"), DefaultParams); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled build err = %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("failed builds left files: %v", entries)
	}
}
