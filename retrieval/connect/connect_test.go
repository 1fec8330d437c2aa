package connect

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dartc/dartc/retrieval/bm25"
	"github.com/dartc/dartc/retrieval/corpus"
	"github.com/dartc/dartc/retrieval/httpretrieve"
)

func TestOpenFileAndURL(t *testing.T) {
	f, err := os.Open("../testdata/small.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _ := corpus.NewReader(f, corpus.FlashRAG)
	path := filepath.Join(t.TempDir(), "i.bm25")
	if _, err := bm25.Build(context.Background(), r, path, bm25.DefaultParams); err != nil {
		t.Fatal(err)
	}
	local, err := Open(path, httpretrieve.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpretrieve.NewHandler(local, httpretrieve.ServerOptions{}))
	defer srv.Close()
	remote, err := Open(srv.URL, httpretrieve.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := local.Search(context.Background(), []string{"plum fruit"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	b, err := remote.Search(context.Background(), []string{"plum fruit"}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(a[0]) != 2 || a[0][0] != b[0][0] || a[0][1] != b[0][1] {
		t.Errorf("local %+v, remote %+v", a, b)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "none"), httpretrieve.ClientOptions{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := Open("", httpretrieve.ClientOptions{}); err == nil {
		t.Error("empty spec accepted")
	}
}

// TestOpenChecksURL: a /retrieve URL is probed when opened (one query,
// with the client's bounded retries), so a run fails at start with a clear
// error rather than at its first search.
func TestOpenChecksURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL + "/retrieve"
	srv.Close() // nothing listens there now
	_, err := Open(url, httpretrieve.ClientOptions{MaxAttempts: 2, BaseBackoff: time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "does not answer") || !strings.Contains(err.Error(), "dartc search serve") {
		t.Fatalf("Open(%s) with no server: %v", url, err)
	}
	// A server that fails the first attempts and then answers: the probe's
	// retries reach it.
	var calls atomic.Int32
	local := smallIndex(t)
	h := httpretrieve.NewHandler(local, httpretrieve.ServerOptions{})
	flaky := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) <= 2 {
			http.Error(w, "warming up", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer flaky.Close()
	if _, err := Open(flaky.URL, httpretrieve.ClientOptions{MaxAttempts: 4, BaseBackoff: time.Millisecond}); err != nil {
		t.Fatalf("a server that answers on the third attempt: %v", err)
	}
	if calls.Load() != 3 {
		t.Errorf("%d requests, want 3 (two 503s, then the answer)", calls.Load())
	}
}

func smallIndex(t *testing.T) *bm25.Index {
	t.Helper()
	f, err := os.Open("../testdata/small.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _ := corpus.NewReader(f, corpus.FlashRAG)
	path := filepath.Join(t.TempDir(), "i.bm25")
	if _, err := bm25.Build(context.Background(), r, path, bm25.DefaultParams); err != nil {
		t.Fatal(err)
	}
	ix, err := bm25.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}
