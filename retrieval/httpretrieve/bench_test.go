package httpretrieve

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dartc/dartc/retrieval/bm25"
	"github.com/dartc/dartc/retrieval/corpus"
	"github.com/dartc/dartc/retrieval/internal/synth"
)

const benchPassages = 120_000

var benchIndex struct {
	once    sync.Once
	dir     string
	ix      *bm25.Index
	queries []string
	err     error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchIndex.dir != "" {
		os.RemoveAll(benchIndex.dir)
	}
	os.Exit(code)
}

// syntheticIndex builds (once per process) the BM25 index of the
// 120k-passage synthetic corpus and loads the HotpotQA questions.
func syntheticIndex(b *testing.B) (*bm25.Index, []string) {
	b.Helper()
	benchIndex.once.Do(func() {
		c := &benchIndex
		root, err := synth.Root()
		if err != nil {
			c.err = err
			return
		}
		src, err := synth.Load(root)
		if err != nil {
			c.err = err
			return
		}
		if c.dir, c.err = os.MkdirTemp("", "retrievebench"); c.err != nil {
			return
		}
		jsonl := filepath.Join(c.dir, "synthetic.jsonl")
		f, err := os.Create(jsonl)
		if err != nil {
			c.err = err
			return
		}
		if c.err = src.Write(f, benchPassages, 1); c.err != nil {
			return
		}
		f.Seek(0, 0)
		r, _ := corpus.NewReader(f, corpus.FlashRAG)
		idx := filepath.Join(c.dir, "synthetic.bm25")
		_, c.err = bm25.Build(context.Background(), r, idx, bm25.DefaultParams)
		f.Close()
		if c.err != nil {
			return
		}
		if c.ix, c.err = bm25.Open(idx); c.err != nil {
			return
		}
		qf, err := os.Open(filepath.Join(root, synth.HotpotQuestions))
		if err != nil {
			c.err = err
			return
		}
		defer qf.Close()
		sc := bufio.NewScanner(qf)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var q struct{ Question string }
			if c.err = json.Unmarshal(sc.Bytes(), &q); c.err != nil {
				return
			}
			c.queries = append(c.queries, q.Question)
		}
		c.err = sc.Err()
	})
	if benchIndex.err != nil {
		b.Fatal(benchIndex.err)
	}
	return benchIndex.ix, benchIndex.queries
}

// BenchmarkServerQPS: 32 concurrent clients on loopback, one HotpotQA
// question per request (topk 3, scores on), against the 120k-passage index.
func BenchmarkServerQPS(b *testing.B) {
	ix, queries := syntheticIndex(b)
	base := startServer(b, NewHandler(ix, ServerOptions{Logger: quietLogger()}))
	c, err := NewClient(base, ClientOptions{})
	if err != nil {
		b.Fatal(err)
	}
	const clients = 32
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for g := 0; g < clients; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				if _, err := c.Search(context.Background(), []string{queries[i%int64(len(queries))]}, 3); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "queries/s")
}
