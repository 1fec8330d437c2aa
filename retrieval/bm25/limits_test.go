package bm25

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/dartc/dartc/internal/alloc"
	"github.com/dartc/dartc/retrieval/corpus"
	"github.com/dartc/dartc/retrieval/internal/synth"
)

// TestIndexFileMode: the index is written 0644 like every other output,
// not with os.CreateTemp's 0600, also when --force replaces an index.
func TestIndexFileMode(t *testing.T) {
	path := buildFile(t, smallCorpus, corpus.FlashRAG, DefaultParams)
	for round := range 2 {
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if m := info.Mode().Perm(); m != 0o644 {
			t.Fatalf("round %d: index mode %v, want -rw-r--r--", round, m)
		}
		f, err := os.Open(smallCorpus)
		if err != nil {
			t.Fatal(err)
		}
		r, err := corpus.NewReader(f, corpus.FlashRAG)
		if err != nil {
			t.Fatal(err)
		}
		_, err = Build(context.Background(), r, path, DefaultParams) // replace it
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestOpenChecksEndsBeforeReading: a large file that is not an index (a
// corpus JSONL given as --index) or an index cut short is refused after
// reading its first and last bytes, not after loading all of it. The files
// are sparse: 256 MiB on paper, a few blocks on disk.
func TestOpenChecksEndsBeforeReading(t *testing.T) {
	const size = 256 << 20
	dir := t.TempDir()
	sparse := func(name string, head []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, head, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(p, size); err != nil {
			t.Fatal(err)
		}
		return p
	}
	jsonl := sparse("wiki-18.jsonl", []byte(`{"id": "0", "contents": "\"Aaron\"\nAaron is a prophet"}`+"\n"))
	var err error
	if got := alloc.During(func() { _, err = Open(jsonl) }); got > 1<<20 {
		t.Errorf("Open of a %d MiB JSONL allocated %.1f MiB before refusing it", size>>20, float64(got)/(1<<20))
	}
	if !errors.Is(err, ErrNotIndex) || !strings.Contains(err.Error(), jsonl) || !strings.Contains(err.Error(), "dartc search index --corpus") {
		t.Errorf("JSONL: err = %v, want ErrNotIndex naming the file and how to index it", err)
	}

	head := smallIndexBytes(t)[:headerSize]
	truncated := sparse("cut.bm25", head) // header of an index, no trailer
	if got := alloc.During(func() { _, err = Open(truncated) }); got > 1<<20 {
		t.Errorf("Open of a %d MiB index without a trailer allocated %.1f MiB", size>>20, float64(got)/(1<<20))
	}
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "trailer") {
		t.Errorf("no trailer: err = %v, want ErrCorrupt about the trailer", err)
	}

	future := slices.Clone(head)
	future[8] = formatVersion + 1
	newer := sparse("newer.bm25", future)
	if got := alloc.During(func() { _, err = Open(newer) }); got > 1<<20 {
		t.Errorf("Open of a %d MiB index of another version allocated %.1f MiB", size>>20, float64(got)/(1<<20))
	}
	if !errors.Is(err, ErrVersion) {
		t.Errorf("version %d: err = %v, want ErrVersion", formatVersion+1, err)
	}
}

// TestRepeatedQueryTermsAllocateOnce: a query is reduced to its distinct
// terms without a string per token, so a long query of one repeated word
// (a bad client, or a model stuck in a loop) costs no more memory than the
// word once, and scores as qtf × idf.
func TestRepeatedQueryTermsAllocateOnce(t *testing.T) {
	ix := openFile(t, buildFile(t, smallCorpus, corpus.FlashRAG, DefaultParams))
	long := strings.Repeat("apple pie ", 100_000) // 1 MB, 200,000 tokens
	ix.SearchOne(long, 3)                         // warm the scratch pool
	var hits []Hit
	var err error
	allocs := testing.AllocsPerRun(3, func() { hits, err = ix.SearchOne(long, 3) })
	if err != nil {
		t.Fatal(err)
	}
	if allocs > 100 {
		t.Errorf("a query of 200,000 tokens, 2 distinct, made %.0f allocations", allocs)
	}
	want, err := ix.SearchOne("apple pie", 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) != len(want) {
		t.Fatalf("%d hits, want %d", len(hits), len(want))
	}
	for i := range want {
		// Every term repeats 100,000 times: every score scales by 100,000.
		if hits[i].Doc != want[i].Doc || !near(hits[i].Score, 100_000*want[i].Score) {
			t.Errorf("hit %d: %+v, want passage %d with 100,000 × %v", i, hits[i], want[i].Doc, want[i].Score)
		}
	}
}

func near(a, b float64) bool { return a-b <= 1e-9*b && b-a <= 1e-9*b }

// expiringContext reports its deadline as passed from the (n+1)-th Err
// call on: a deadline that falls while one query is being scored, at a
// point the test chooses rather than a wall-clock race.
type expiringContext struct {
	context.Context
	calls, n int32
	count    atomic.Int32
}

func (c *expiringContext) Err() error {
	if c.count.Add(1) > c.n {
		return context.DeadlineExceeded
	}
	return nil
}

// TestSearchStopsWithinAQuery: Search checks its context between the terms
// of a query, not only between queries, so one query of many common terms
// cannot outlive a server's per-request deadline.
func TestSearchStopsWithinAQuery(t *testing.T) {
	ix := openFile(t, buildFile(t, fixture(t, synth.HotpotCorpus), corpus.TitleText, DefaultParams))
	query := "the of and a in to was is for on as by with his at from that he which"
	if _, err := ix.Search(context.Background(), []string{query}, 3); err != nil {
		t.Fatal(err)
	}
	ctx := &expiringContext{Context: context.Background(), n: 3}
	_, err := ix.Search(ctx, []string{query}, 3)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("deadline passed after 3 checks: err = %v, want context.DeadlineExceeded", err)
	}
	if strings.Contains(err.Error(), query) {
		t.Errorf("the error quotes the query (which may be long): %v", err)
	}
}
