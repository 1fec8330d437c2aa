package httpretrieve

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dartc/dartc/internal/alloc"
)

// errorOf decodes a {"error": …} body.
func errorOf(t *testing.T, body []byte) string {
	t.Helper()
	var e struct{ Error string }
	if err := json.Unmarshal(body, &e); err != nil || e.Error == "" {
		t.Fatalf("body %.200q is not a JSON error: %v", body, err)
	}
	return e.Error
}

// TestQueryLengthIsBounded: a query up to --max-query-bytes is answered;
// a longer one is refused with a 400 naming it and the limit, before any
// search. Without the bound, one 4 MiB query of repeated common words made
// the server's heap grow from 9.7 to 110 MB.
func TestQueryLengthIsBounded(t *testing.T) {
	ix := hotpotIndex(t)
	base := startServer(t, NewHandler(ix, ServerOptions{Logger: quietLogger()}))
	atLimit := strings.Repeat("the of and ", DefaultMaxQueryBytes/11+1)[:DefaultMaxQueryBytes]
	body, _ := json.Marshal(map[string]any{"queries": []string{"apple", atLimit}, "topk": 3})
	if resp, b := post(t, base+"/retrieve", string(body)); resp.StatusCode != 200 {
		t.Fatalf("a query of %d bytes: status %d: %.200s", len(atLimit), resp.StatusCode, b)
	}

	huge := strings.Repeat("the ", (4<<20-100)/4) // the whole body limit, one query
	body, _ = json.Marshal(map[string]any{"queries": []string{"apple", huge}, "topk": 3})
	var resp *http.Response
	var msg []byte
	allocated := alloc.During(func() { resp, msg = post(t, base+"/retrieve", string(body)) })
	t.Logf("one query of %d bytes: status %d, %.1f MB allocated: %s", len(huge), resp.StatusCode, float64(allocated)/1e6, msg)
	if resp.StatusCode != 400 {
		t.Fatalf("a query of %d bytes: status %d, want 400", len(huge), resp.StatusCode)
	}
	e := errorOf(t, msg)
	for _, want := range []string{"query 2", "8192", "--max-query-bytes", "shorten"} {
		if !strings.Contains(e, want) {
			t.Errorf("error %q does not say %q", e, want)
		}
	}
	// Client and server together: making, reading and decoding the 4 MiB
	// body (about 31 MB). Searching the query, as before the bound, took
	// 123 MB.
	if allocated > 48<<20 {
		t.Errorf("refusing a %d-byte query allocated %.1f MB", len(huge), float64(allocated)/1e6)
	}

	small := startServer(t, NewHandler(ix, ServerOptions{Logger: quietLogger(), MaxQueryBytes: 16}))
	resp, msg = post(t, small+"/retrieve", `{"queries": ["sixteen bytes ok", "seventeen bytes!!"]}`)
	if resp.StatusCode != 400 || !strings.Contains(errorOf(t, msg), "query 2 of \"queries\" is 17 bytes, over the limit of 16") {
		t.Errorf("--max-query-bytes 16: status %d, %s", resp.StatusCode, msg)
	}
}

// TestRequestTimeout: a request that runs past --timeout gets a 503 and a
// JSON error saying which limit and what to do, instead of the server
// searching on for as long as the request asks; the dartc client reports it.
func TestRequestTimeout(t *testing.T) {
	ix := hotpotIndex(t)
	base := startServer(t, NewHandler(ix, ServerOptions{Logger: quietLogger(), Timeout: time.Millisecond}))
	// 4,000 queries of 20 common words: far more than a millisecond of
	// scoring on 4,968 passages, and all in the first streamed slice
	// (topk 1: 1,024 queries a slice), so no byte is written before the
	// deadline.
	qs := make([]string, 4000)
	for i := range qs {
		qs[i] = "the of and a in to was is for on as by with his at from that he which an"
	}
	body, _ := json.Marshal(map[string]any{"queries": qs, "topk": 1})
	start := time.Now()
	resp, msg := post(t, base+"/retrieve", string(body))
	t.Logf("status %d after %v: %s", resp.StatusCode, time.Since(start), msg)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503", resp.StatusCode)
	}
	e := errorOf(t, msg)
	for _, want := range []string{"1ms", "--timeout", "of 4000 queries", "fewer or shorter queries"} {
		if !strings.Contains(e, want) {
			t.Errorf("error %q does not say %q", e, want)
		}
	}

	c, err := NewClient(base, ClientOptions{MaxAttempts: 1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Search(context.Background(), qs, 1)
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 503 || !strings.Contains(se.Message, "--timeout") {
		t.Errorf("client: %v, want the server's 503 and its message", err)
	}
}

// TestServerOptionsCheck: limits that are negative or that contradict the
// default topk are refused when the handler is made, not served: before,
// DefaultTopK 5 with MaxTopK 3 answered 5 passages to every request that
// left out "topk", and a negative limit silently became the default.
func TestServerOptionsCheck(t *testing.T) {
	ix := smallIndex(t)
	bad := []struct {
		opts ServerOptions
		has  []string
	}{
		{ServerOptions{DefaultTopK: 5, MaxTopK: 3}, []string{"default topk (--topk) 5", "largest topk (--max-topk) 3"}},
		{ServerOptions{MaxTopK: 2}, []string{"default topk (--topk) 3", "--max-topk) 2"}},
		{ServerOptions{DefaultTopK: 10, MaxResults: 5}, []string{"default topk (--topk) 10", "(--max-results) 5"}},
		{ServerOptions{MaxTopK: -1}, []string{"--max-topk", "negative"}},
		{ServerOptions{MaxResults: -1}, []string{"--max-results", "negative"}},
		{ServerOptions{MaxBodyBytes: -1}, []string{"--max-body", "negative"}},
		{ServerOptions{MaxQueryBytes: -1}, []string{"--max-query-bytes", "negative"}},
		{ServerOptions{Timeout: -time.Second}, []string{"--timeout", "negative"}},
		{ServerOptions{DefaultTopK: -3}, []string{"--topk", "negative"}},
		{ServerOptions{MaxQueries: -1}, []string{"most queries", "negative"}},
	}
	for _, c := range bad {
		err := c.opts.Check()
		if err == nil {
			t.Errorf("%+v: no error", c.opts)
			continue
		}
		for _, want := range c.has {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%+v: error %q does not say %q", c.opts, err, want)
			}
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%+v: NewHandler made a handler", c.opts)
				}
			}()
			NewHandler(ix, c.opts)
		}()
	}
	for _, ok := range []ServerOptions{{}, {DefaultTopK: 3, MaxTopK: 3, MaxResults: 3}, {DefaultTopK: 1000}} {
		if err := ok.Check(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
}
