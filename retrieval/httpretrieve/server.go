package httpretrieve

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/dartc/dartc/retrieval"
)

var errNonFiniteScore = errors.New("httpretrieve: a score is NaN or infinite")

// Defaults of the limits that have a `dartc search serve` flag.
const (
	// DefaultMaxQueryBytes bounds one query. Search-R1's queries are a few
	// words, and dartc's agent loop sends at most agent.MaxQueryBytes (1 KiB)
	// of one: 8 KiB refuses only other clients' oversized queries.
	DefaultMaxQueryBytes = 8 << 10
	// DefaultTimeout bounds the time one request may take, under the 30 s
	// a dartc client waits per attempt so that it reads the server's error.
	DefaultTimeout = 25 * time.Second
)

// ServerOptions configure a /retrieve handler. Zero fields take the
// defaults; negative ones, or a DefaultTopK the other limits refuse, are
// an error (Check).
type ServerOptions struct {
	DefaultTopK int // topk when the request omits it; default 3 (Search-R1's)
	MaxTopK     int // largest accepted topk; default 1000
	MaxQueries  int // most queries in one request; default 4096
	// MaxResults bounds queries × topk, the passages one response may hold;
	// default 16384 (about 10 MB of HotpotQA-sized passages). Search-R1's
	// trainer asks for batch × topk = 512 × 3 = 1,536.
	MaxResults   int
	MaxBodyBytes int64 // request body limit; default 4 MiB
	// MaxQueryBytes bounds the length of one query; default
	// DefaultMaxQueryBytes.
	MaxQueryBytes int
	// Timeout bounds one request, searching included: past it the server
	// answers 503, or cuts a response already started; default
	// DefaultTimeout.
	Timeout time.Duration
	Logger  *slog.Logger
}

func (o ServerOptions) withDefaults() ServerOptions {
	if o.DefaultTopK == 0 {
		o.DefaultTopK = 3
	}
	if o.MaxTopK == 0 {
		o.MaxTopK = 1000
	}
	if o.MaxQueries == 0 {
		o.MaxQueries = 4096
	}
	if o.MaxResults == 0 {
		o.MaxResults = 16384
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 4 << 20
	}
	if o.MaxQueryBytes == 0 {
		o.MaxQueryBytes = DefaultMaxQueryBytes
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Check reports a negative limit, and a default topk above MaxTopK (a
// request without "topk" would get more passages than any request may ask
// for) or above MaxResults (every such request would be refused). Zero
// fields take the defaults.
func (o ServerOptions) Check() error {
	for _, f := range []struct {
		name string
		neg  bool
		v    any
	}{
		{"default topk (--topk)", o.DefaultTopK < 0, o.DefaultTopK},
		{"largest topk (--max-topk)", o.MaxTopK < 0, o.MaxTopK},
		{"most queries per request", o.MaxQueries < 0, o.MaxQueries},
		{"most passages per request (--max-results)", o.MaxResults < 0, o.MaxResults},
		{"body limit (--max-body)", o.MaxBodyBytes < 0, o.MaxBodyBytes},
		{"query length limit (--max-query-bytes)", o.MaxQueryBytes < 0, o.MaxQueryBytes},
		{"request timeout (--timeout)", o.Timeout < 0, o.Timeout},
	} {
		if f.neg {
			return fmt.Errorf("httpretrieve: the %s is negative (%v): want a positive value, or 0 for the default", f.name, f.v)
		}
	}
	d := o.withDefaults()
	if d.DefaultTopK > d.MaxTopK {
		return fmt.Errorf("httpretrieve: the default topk (--topk) %d is over the largest topk (--max-topk) %d: lower --topk or raise --max-topk", d.DefaultTopK, d.MaxTopK)
	}
	if d.DefaultTopK > d.MaxResults {
		return fmt.Errorf("httpretrieve: the default topk (--topk) %d is over the most passages per request (--max-results) %d: lower --topk or raise --max-results", d.DefaultTopK, d.MaxResults)
	}
	return nil
}

type handler struct {
	s    retrieval.Searcher
	opts ServerOptions
}

// NewHandler returns an http.Handler that serves POST /retrieve from s and
// logs every request. It panics if opts fail Check: call Check first to
// report bad options as an error.
func NewHandler(s retrieval.Searcher, opts ServerOptions) http.Handler {
	if err := opts.Check(); err != nil {
		panic(err)
	}
	return &handler{s: s, opts: opts.withDefaults()}
}

// request is the decoded /retrieve body; pointers tell missing from zero.
type request struct {
	Queries      *[]string        `json:"queries"`
	TopK         *json.RawMessage `json:"topk"`
	ReturnScores *bool            `json:"return_scores"`
}

// statusWriter records the status for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
	errMsg string // set by writeError, for the log
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	queries, topk := h.serve(sw, r)
	level := slog.LevelInfo
	if sw.status >= 500 {
		level = slog.LevelError
	}
	attrs := []slog.Attr{
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Int("status", sw.status),
		slog.Int("queries", queries), slog.Int("topk", topk),
		slog.Duration("duration", time.Since(start)), slog.String("remote", r.RemoteAddr),
	}
	if sw.errMsg != "" {
		attrs = append(attrs, slog.String("error", sw.errMsg))
	}
	h.opts.Logger.LogAttrs(r.Context(), level, "retrieve", attrs...)
}

// serve answers one request and returns what the log line reports.
func (h *handler) serve(w http.ResponseWriter, r *http.Request) (queries, topk int) {
	if r.URL.Path != "/retrieve" {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such path %q: the endpoint is POST /retrieve", r.URL.Path))
		return 0, 0
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed: use POST /retrieve", r.Method))
		return 0, 0
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("request body is over the limit of %d bytes: send fewer queries per request", h.opts.MaxBodyBytes))
		} else {
			writeError(w, http.StatusBadRequest, "reading request body: "+err.Error())
		}
		return 0, 0
	}
	req, topk, err := h.parse(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return 0, 0
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.opts.Timeout)
	defer cancel()
	h.respond(ctx, w, *req.Queries, topk, req.ReturnScores != nil && *req.ReturnScores)
	return len(*req.Queries), topk
}

// streamPassages is about how many passages the server holds at a time
// while it writes a response: queries are searched and written in slices.
const streamPassages = 1024

// respond searches queries a slice at a time and streams the response, so
// that the server holds at most one slice of results. A failure before the
// first byte is a 500 (503 when the request ran out of time); a failure
// after it aborts the connection, so the client sees a broken response,
// never a valid but truncated one. ctx carries the request's deadline; it
// is checked before each slice, and the Searcher checks it as it goes.
func (h *handler) respond(ctx context.Context, w http.ResponseWriter, queries []string, topk int, withScores bool) {
	per := max(1, streamPassages/topk)
	var bw *bufio.Writer
	buf := make([]byte, 0, 64<<10)
	for start := 0; start < len(queries) || start == 0; start += per {
		end := min(start+per, len(queries))
		err := ctx.Err()
		var results [][]retrieval.Passage
		if err == nil {
			results, err = h.s.Search(ctx, queries[start:end], topk)
		}
		if err == nil {
			buf, err = appendResults(buf[:0], results, withScores, start == 0)
		}
		if err != nil {
			timedOut := errors.Is(ctx.Err(), context.DeadlineExceeded)
			if timedOut {
				err = fmt.Errorf("the request ran over the server's limit of %v per request (--timeout) with %d of %d queries answered: send fewer or shorter queries per request",
					h.opts.Timeout, start, len(queries))
			}
			h.opts.Logger.Error("retrieve: search failed", "err", err)
			if bw == nil {
				if timedOut {
					writeError(w, http.StatusServiceUnavailable, err.Error())
				} else {
					writeError(w, http.StatusInternalServerError, "search failed: "+err.Error())
				}
				return
			}
			panic(http.ErrAbortHandler)
		}
		if bw == nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			bw = bufio.NewWriterSize(w, 64<<10)
			bw.WriteString(responseOpen)
		}
		if _, err := bw.Write(buf); err != nil {
			return // the client went away
		}
		if end == len(queries) {
			break
		}
	}
	bw.WriteString(responseClose)
	bw.Flush()
}

// parse decodes and checks a request body.
func (h *handler) parse(body []byte) (request, int, error) {
	var req request
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&req); err != nil {
		return req, 0, fmt.Errorf("malformed JSON body: %v; want {\"queries\": [\"...\"], \"topk\": 3, \"return_scores\": true}", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, 0, errors.New("malformed JSON body: data after the request object")
	}
	if req.Queries == nil {
		return req, 0, errors.New(`missing field "queries": want a list of query strings`)
	}
	n := len(*req.Queries)
	if n > h.opts.MaxQueries {
		return req, 0, fmt.Errorf(`"queries" has %d entries, the limit is %d: split the batch`, n, h.opts.MaxQueries)
	}
	// Checked before any search: a query's cost grows with its length.
	for i, q := range *req.Queries {
		if len(q) > h.opts.MaxQueryBytes {
			return req, 0, fmt.Errorf(`query %d of "queries" is %d bytes, over the limit of %d per query: shorten it (the server's --max-query-bytes sets the limit)`,
				i+1, len(q), h.opts.MaxQueryBytes)
		}
	}
	topk := h.opts.DefaultTopK
	if req.TopK != nil && string(*req.TopK) != "null" {
		k, err := strconv.ParseInt(string(*req.TopK), 10, 64)
		if err != nil {
			return req, 0, fmt.Errorf(`"topk" must be an integer, got %s`, *req.TopK)
		}
		if k < 1 || k > int64(h.opts.MaxTopK) {
			return req, 0, fmt.Errorf(`"topk" is %d: want 1 to %d`, k, h.opts.MaxTopK)
		}
		topk = int(k)
	}
	if n*topk > h.opts.MaxResults {
		return req, 0, fmt.Errorf(`%d queries × topk %d = %d passages, over the limit of %d per request: send fewer queries per request or a smaller topk (the server's --max-results sets the limit)`,
			n, topk, n*topk, h.opts.MaxResults)
	}
	return req, topk, nil
}

func writeError(w http.ResponseWriter, status int, msg string) {
	if sw, ok := w.(*statusWriter); ok {
		sw.errMsg = msg
	}
	body, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	w.Write(body)
}

// Serve serves h on ln until ctx ends, then shuts down gracefully: it stops
// accepting, lets requests in flight finish (up to grace), closes whatever
// is still open after that (a client connection that never sent a request
// keeps net/http waiting), and returns nil.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("httpretrieve: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		if !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("httpretrieve: shutdown: %w", err)
		}
		srv.Close()
	}
	if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("httpretrieve: serve: %w", err)
	}
	return nil
}
