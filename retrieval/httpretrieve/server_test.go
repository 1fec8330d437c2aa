package httpretrieve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dartc/dartc/retrieval"
	"github.com/dartc/dartc/retrieval/bm25"
	"github.com/dartc/dartc/retrieval/corpus"
)

// smallIndex builds the real BM25 index of the shared small test corpus.
func smallIndex(t testing.TB) *bm25.Index {
	t.Helper()
	f, err := os.Open("../testdata/small.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := corpus.NewReader(f, corpus.FlashRAG)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "small.bm25")
	if _, err := bm25.Build(context.Background(), r, path, bm25.DefaultParams); err != nil {
		t.Fatal(err)
	}
	ix, err := bm25.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// startServer serves h on a loopback port and stops it when the test ends.
func startServer(t testing.TB, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, h, 5*time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

var testQueries = []string{"apple pie", "plum trees fruit", "computers data", "California orchards", "zebra", ""}

func TestRoundTrip(t *testing.T) {
	ix := smallIndex(t)
	base := startServer(t, NewHandler(ix, ServerOptions{Logger: quietLogger()}))
	c, err := NewClient(base, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.URL() != base+"/retrieve" {
		t.Errorf("client URL %s", c.URL())
	}
	want, err := ix.Search(context.Background(), testQueries, 4)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Search(context.Background(), testQueries, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d result lists, want %d", len(got), len(want))
	}
	for q := range want {
		if len(got[q]) != len(want[q]) {
			t.Fatalf("query %q: %d passages, want %d", testQueries[q], len(got[q]), len(want[q]))
		}
		for i := range want[q] {
			if got[q][i] != want[q][i] { // scores survive the JSON round trip exactly
				t.Errorf("query %q rank %d: got %+v, want %+v", testQueries[q], i, got[q][i], want[q][i])
			}
		}
	}
	if len(got[0]) == 0 || got[0][0].ID != "d0" {
		t.Errorf("top passage for 'apple pie' = %+v", got[0])
	}

	// Without scores, and with topk left to the server's default (3).
	resp, body := post(t, base+"/retrieve", `{"queries": ["apple pie"], "return_scores": false}`)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var plain struct{ Result [][]map[string]any }
	if err := json.Unmarshal(body, &plain); err != nil {
		t.Fatal(err)
	}
	if len(plain.Result) != 1 || len(plain.Result[0]) != 3 {
		t.Fatalf("default topk: %s", body)
	}
	for _, doc := range plain.Result[0] {
		if len(doc) != 2 || doc["id"] == nil || doc["contents"] == nil {
			t.Errorf("document without scores should be {id, contents}, got %v", doc)
		}
	}
	// The client reads a scoreless response too.
	ps, err := decodeResponse(body, 1)
	if err != nil || ps[0][0].ID != "d0" || ps[0][0].Score != 0 {
		t.Errorf("decode scoreless response: %+v, %v", ps, err)
	}
}

func post(t testing.TB, url, body string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, data
}

func TestBadRequests(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
	base := startServer(t, NewHandler(smallIndex(t), ServerOptions{Logger: logger, MaxBodyBytes: 1024, MaxTopK: 50}))
	cases := []struct {
		name, method, path, body string
		status                   int
		errHas                   string
	}{
		{"malformed JSON", "POST", "/retrieve", `{"queries": ["a"`, 400, "malformed JSON"},
		{"not an object", "POST", "/retrieve", `[1, 2]`, 400, "malformed JSON"},
		{"empty body", "POST", "/retrieve", ``, 400, "malformed JSON"},
		{"trailing data", "POST", "/retrieve", `{"queries": ["a"]} {}`, 400, "after the request object"},
		{"missing queries", "POST", "/retrieve", `{"topk": 3}`, 400, `missing field "queries"`},
		{"null queries", "POST", "/retrieve", `{"queries": null}`, 400, `missing field "queries"`},
		{"queries not strings", "POST", "/retrieve", `{"queries": ["a", 7]}`, 400, "malformed JSON"},
		{"queries a string", "POST", "/retrieve", `{"queries": "apple"}`, 400, "malformed JSON"},
		{"topk zero", "POST", "/retrieve", `{"queries": ["a"], "topk": 0}`, 400, `"topk" is 0`},
		{"topk negative", "POST", "/retrieve", `{"queries": ["a"], "topk": -3}`, 400, `"topk" is -3`},
		{"topk absurd", "POST", "/retrieve", `{"queries": ["a"], "topk": 1000000000}`, 400, "want 1 to 50"},
		{"topk huge", "POST", "/retrieve", `{"queries": ["a"], "topk": 1e400}`, 400, "must be an integer"},
		{"topk fraction", "POST", "/retrieve", `{"queries": ["a"], "topk": 2.5}`, 400, "must be an integer"},
		{"topk string", "POST", "/retrieve", `{"queries": ["a"], "topk": "3"}`, 400, "must be an integer"},
		{"return_scores string", "POST", "/retrieve", `{"queries": ["a"], "return_scores": "yes"}`, 400, "malformed JSON"},
		{"body over limit", "POST", "/retrieve", `{"queries": ["` + strings.Repeat("apple ", 400) + `"]}`, 400, "over the limit of 1024 bytes"},
		{"GET", "GET", "/retrieve", ``, 405, "use POST"},
		{"wrong path", "POST", "/search", `{"queries": ["a"]}`, 404, "POST /retrieve"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, base+c.path, strings.NewReader(c.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status {
				t.Errorf("status %d, want %d (%s)", resp.StatusCode, c.status, body)
			}
			var e struct{ Error string }
			if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Error, c.errHas) {
				t.Errorf("body %s: want a JSON error containing %q", body, c.errHas)
			}
			// The server keeps serving after every bad request.
			resp, body = post(t, base+"/retrieve", `{"queries": ["apple"], "topk": 2, "return_scores": true}`)
			if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"score":`)) {
				t.Errorf("good request after a bad one: %d %s", resp.StatusCode, body)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "status=400") || !strings.Contains(logs.String(), "status=200") ||
		!strings.Contains(logs.String(), `error="\"topk\" is 0`) {
		t.Errorf("request log lacks status lines:\n%s", logs.String())
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestConcurrentClients(t *testing.T) {
	ix := smallIndex(t)
	base := startServer(t, NewHandler(ix, ServerOptions{Logger: quietLogger()}))
	c, err := NewClient(base+"/retrieve", ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close() // its idle connections, before the server shuts down
	want, _ := ix.Search(context.Background(), testQueries, 3)
	const clients, requests = 32, 200
	var failures atomic.Int64
	var firstErr sync.Once
	var wg sync.WaitGroup
	for g := 0; g < clients; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < requests; i++ {
				q := (g + i) % len(testQueries)
				got, err := c.Search(context.Background(), testQueries[q:q+1], 3)
				if err == nil && len(got[0]) != len(want[q]) {
					err = fmt.Errorf("query %q: %d passages, want %d", testQueries[q], len(got[0]), len(want[q]))
				}
				for k := 0; err == nil && k < len(want[q]); k++ {
					if got[0][k] != want[q][k] {
						err = fmt.Errorf("query %q rank %d differs", testQueries[q], k)
					}
				}
				if err != nil {
					failures.Add(1)
					firstErr.Do(func() { t.Errorf("client %d request %d: %v", g, i, err) })
				}
			}
		}(g)
	}
	wg.Wait()
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed", n, clients*requests)
	}
}

// flaky answers 503 to the first n requests, then serves from s.
type flaky struct {
	n, calls atomic.Int64
	h        http.Handler
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.calls.Add(1) <= f.n.Load() {
		writeError(w, http.StatusServiceUnavailable, "warming up")
		return
	}
	f.h.ServeHTTP(w, r)
}

func TestClientRetries(t *testing.T) {
	ix := smallIndex(t)
	f := &flaky{h: NewHandler(ix, ServerOptions{Logger: quietLogger()})}
	base := startServer(t, f)
	opts := ClientOptions{MaxAttempts: 3, BaseBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}
	c, _ := NewClient(base, opts)

	f.n.Store(2)
	if _, err := c.Search(context.Background(), []string{"apple"}, 1); err != nil {
		t.Errorf("two 503s then success: %v", err)
	}
	if got := f.calls.Load(); got != 3 {
		t.Errorf("%d attempts, want 3", got)
	}

	f.calls.Store(0)
	f.n.Store(100)
	_, err := c.Search(context.Background(), []string{"apple"}, 1)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 503 || !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Errorf("always 503: err = %v", err)
	}
	if got := f.calls.Load(); got != 3 {
		t.Errorf("%d attempts, want 3 (bounded)", got)
	}

	// A 4xx is the caller's fault: no retry.
	f.calls.Store(0)
	f.n.Store(0)
	c2, _ := NewClient(base, ClientOptions{MaxAttempts: 3, BaseBackoff: time.Millisecond})
	_, err = c2.Search(context.Background(), []string{"apple"}, 5000)
	if !errors.As(err, &se) || se.Status != 400 || !strings.Contains(se.Message, "topk") {
		t.Errorf("topk 5000: err = %v", err)
	}
	if got := f.calls.Load(); got != 1 {
		t.Errorf("%d attempts on a 400, want 1", got)
	}
	if _, err := c2.Search(context.Background(), []string{"apple"}, 0); !errors.Is(err, retrieval.ErrBadTopK) {
		t.Errorf("topk 0: err = %v", err)
	}
}

func TestClientTimeout(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	base := startServer(t, slow)
	defer close(release)
	c, _ := NewClient(base, ClientOptions{Timeout: 50 * time.Millisecond, MaxAttempts: 2, BaseBackoff: time.Millisecond})
	_, err := c.Search(context.Background(), []string{"apple"}, 1)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want a deadline error", err)
	}
	if calls.Load() != 2 {
		t.Errorf("%d attempts, want 2", calls.Load())
	}
	// The caller's context bounds the retries.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Search(ctx, []string{"apple"}, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: err = %v", err)
	}
}

func TestClientRejectsBadURLAndResponses(t *testing.T) {
	for _, u := range []string{"127.0.0.1:8000", "ftp://x/retrieve", "http://", "::"} {
		if _, err := NewClient(u, ClientOptions{}); err == nil {
			t.Errorf("NewClient(%q) succeeded", u)
		}
	}
	for _, body := range []string{`{}`, `{"result": [[]]}`, `{"result": [[{"document": {"id": "1"}}]], "x": 1}`, `nope`} {
		if _, err := decodeResponse([]byte(body), 1); err == nil && body != `{"result": [[]]}` {
			t.Errorf("decodeResponse(%s) succeeded", body)
		}
	}
	// Search-R1's BM25 server sends title and text beside contents; a numeric id is kept as text.
	ps, err := decodeResponse([]byte(`{"result": [[{"document": {"id": 5, "title": "T", "text": "body"}, "score": 2.5}]]}`), 1)
	if err != nil || ps[0][0] != (retrieval.Passage{ID: "5", Contents: "\"T\"\nbody", Score: 2.5}) {
		t.Errorf("title/text document: %+v, %v", ps, err)
	}
}

// blocking is a Searcher that waits for release before answering.
type blocking struct {
	started chan struct{}
	release chan struct{}
}

func (b *blocking) Search(ctx context.Context, queries []string, topk int) ([][]retrieval.Passage, error) {
	close(b.started)
	<-b.release
	return [][]retrieval.Passage{{{ID: "1", Contents: "\"T\"\nx", Score: 1}}}, nil
}

func TestGracefulShutdown(t *testing.T) {
	b := &blocking{started: make(chan struct{}), release: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, NewHandler(b, ServerOptions{Logger: quietLogger()}), 5*time.Second) }()
	url := "http://" + ln.Addr().String() + "/retrieve"
	answered := make(chan int, 1)
	go func() {
		resp, err := http.Post(url, "application/json", strings.NewReader(`{"queries": ["q"]}`))
		if err != nil {
			answered <- -1
			return
		}
		resp.Body.Close()
		answered <- resp.StatusCode
	}()
	<-b.started
	cancel() // as SIGTERM does in `dartc search serve`
	time.Sleep(50 * time.Millisecond)
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("listener still accepts after shutdown began")
	}
	close(b.release)
	if code := <-answered; code != 200 {
		t.Errorf("request in flight during shutdown got %d, want 200", code)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve returned %v, want nil", err)
	}
}
