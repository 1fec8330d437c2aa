package bm25

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dartc/dartc/retrieval/corpus"
	"github.com/dartc/dartc/retrieval/internal/synth"
)

// benchPassages is the size of the synthetic benchmark corpus.
const benchPassages = 120_000

var benchCorpus struct {
	once sync.Once
	dir  string
	path string // synthetic JSONL
	idx  string // its index
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchCorpus.dir != "" {
		os.RemoveAll(benchCorpus.dir)
	}
	os.Exit(code)
}

// syntheticCorpus writes (once per process) the 120k-passage corpus and its index.
func syntheticCorpus(b *testing.B) (corpusPath, indexPath string) {
	b.Helper()
	root := fixture(b, ".")
	benchCorpus.once.Do(func() {
		c := &benchCorpus
		if c.dir, c.err = os.MkdirTemp("", "bm25bench"); c.err != nil {
			return
		}
		src, err := synth.Load(root)
		if err != nil {
			c.err = err
			return
		}
		c.path = filepath.Join(c.dir, "synthetic.jsonl")
		f, err := os.Create(c.path)
		if err != nil {
			c.err = err
			return
		}
		if c.err = src.Write(f, benchPassages, 1); c.err != nil {
			return
		}
		if c.err = f.Close(); c.err != nil {
			return
		}
		c.idx = filepath.Join(c.dir, "synthetic.bm25")
		_, c.err = buildFrom(c.path, c.idx)
	})
	if benchCorpus.err != nil {
		b.Fatal(benchCorpus.err)
	}
	return benchCorpus.path, benchCorpus.idx
}

func buildFrom(corpusPath, out string) (BuildStats, error) {
	f, err := os.Open(corpusPath)
	if err != nil {
		return BuildStats{}, err
	}
	defer f.Close()
	r, err := corpus.NewReader(f, corpus.FlashRAG)
	if err != nil {
		return BuildStats{}, err
	}
	return Build(context.Background(), r, out, DefaultParams)
}

// BenchmarkBuild indexes the 120k-passage corpus from its JSONL file.
func BenchmarkBuild(b *testing.B) {
	path, _ := syntheticCorpus(b)
	out := filepath.Join(b.TempDir(), "i.bm25")
	info, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var stats BuildStats
	for i := 0; i < b.N; i++ {
		if stats, err = buildFrom(path, out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchPassages*b.N)/b.Elapsed().Seconds(), "passages/s")
	b.ReportMetric(float64(info.Size())/1e6, "corpus-MB")
	b.ReportMetric(float64(stats.Bytes)/1e6, "index-MB")
	b.ReportMetric(float64(stats.TotalTokens)/1e6, "Mtokens")
}

// BenchmarkOpen loads the 120k-passage index (read, checksum, checks).
func BenchmarkOpen(b *testing.B) {
	_, idx := syntheticCorpus(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Open(idx); err != nil {
			b.Fatal(err)
		}
	}
}

func benchQueries(b *testing.B) []string {
	qs := readHotpot(b, fixture(b, synth.HotpotQuestions))
	out := make([]string, len(qs))
	for i, q := range qs {
		out[i] = q.Question
	}
	return out
}

// BenchmarkQuery runs HotpotQA questions (top 3) one at a time against the
// 120k-passage index and reports latency percentiles.
func BenchmarkQuery(b *testing.B) {
	_, idx := syntheticCorpus(b)
	ix, err := Open(idx)
	if err != nil {
		b.Fatal(err)
	}
	queries := benchQueries(b)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := ix.Search(context.Background(), queries[i%len(queries):i%len(queries)+1], 3); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkQueryParallel is BenchmarkQuery from GOMAXPROCS goroutines.
func BenchmarkQueryParallel(b *testing.B) {
	_, idx := syntheticCorpus(b)
	ix, err := Open(idx)
	if err != nil {
		b.Fatal(err)
	}
	queries := benchQueries(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, err := ix.SearchOne(queries[i%len(queries)], 3); err != nil {
				b.Error(err)
				return
			}
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
}
