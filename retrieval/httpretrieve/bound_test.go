package httpretrieve

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/internal/alloc"
	"github.com/dartc/dartc/retrieval/bm25"
	"github.com/dartc/dartc/retrieval/corpus"
)

// hotpotIndex builds the BM25 index of the 4,968 bundled HotpotQA
// paragraphs: enough passages for topk 1000 to return 1000 per query.
func hotpotIndex(t testing.TB) *bm25.Index {
	t.Helper()
	f, err := os.Open("../../data/demo/corpus.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := corpus.NewReader(f, corpus.TitleText)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hotpot.bm25")
	if _, err := bm25.Build(context.Background(), r, path, bm25.DefaultParams); err != nil {
		t.Fatal(err)
	}
	ix, err := bm25.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// TestRequestSizeIsBounded: a small request whose queries × topk would
// make a response of tens of megabytes (100 queries of 10 bytes × topk
// 1000 = 100,000 passages, about 70 MB of JSON) is refused with a 400 that
// says how to fix it, before the server searches or allocates the results.
func TestRequestSizeIsBounded(t *testing.T) {
	ix := hotpotIndex(t)
	base := startServer(t, NewHandler(ix, ServerOptions{Logger: quietLogger()}))
	qs := make([]string, 100)
	for i := range qs {
		qs[i] = "the of and"
	}
	body, _ := json.Marshal(map[string]any{"queries": qs, "topk": 1000, "return_scores": true})
	var status int
	var msg []byte
	allocated := alloc.During(func() {
		resp, b := post(t, base+"/retrieve", string(body))
		status, msg = resp.StatusCode, b
	})
	t.Logf("%d-byte request, 100 queries × topk 1000: status %d, %.2f MB allocated: %s", len(body), status, float64(allocated)/1e6, msg)
	if status != 400 || !bytes.Contains(msg, []byte("16384")) || !bytes.Contains(msg, []byte("fewer queries")) {
		t.Fatalf("status %d, body %s; want 400 naming the limit and the fix", status, msg)
	}
	if allocated > 4<<20 {
		t.Fatalf("refusing the request allocated %.1f MB", float64(allocated)/1e6)
	}
}

// TestLargeResponseStreams: a request at the limit is answered, the
// streamed body is byte for byte the response encoded in one piece, and
// the server holds only a slice of the results at a time.
func TestLargeResponseStreams(t *testing.T) {
	ix := hotpotIndex(t)
	base := startServer(t, NewHandler(ix, ServerOptions{Logger: quietLogger(), MaxResults: 16000}))
	qs := make([]string, 16)
	for i := range qs {
		qs[i] = strings.Repeat("the of and ", i%3+1)
	}
	results, err := ix.Search(context.Background(), qs, 1000)
	if err != nil {
		t.Fatal(err)
	}
	want, err := appendResponse(nil, results, true)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{"queries": qs, "topk": 1000, "return_scores": true})
	resp, got := post(t, base+"/retrieve", string(body))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, got)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("streamed response (%d bytes) differs from the one-piece encoding (%d bytes)", len(got), len(want))
	}
	if resp.ContentLength != -1 {
		t.Errorf("Content-Length %d: a streamed response has none", resp.ContentLength)
	}
}
