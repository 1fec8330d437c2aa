package httpretrieve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dartc/dartc/retrieval"
)

// ClientOptions configure a Client. Zero fields take the defaults.
type ClientOptions struct {
	Timeout     time.Duration // per attempt; default 30s
	MaxAttempts int           // attempts per Search, first included; default 4
	BaseBackoff time.Duration // wait before the first retry, doubled each time; default 200ms
	MaxBackoff  time.Duration // cap on one wait; default 5s
	HTTPClient  *http.Client  // default: a client with its own transport
}

// Client calls a /retrieve server. It implements retrieval.Searcher and is
// safe for concurrent use.
type Client struct {
	url  string
	opts ClientOptions
}

var _ retrieval.Searcher = (*Client)(nil)

// NewClient returns a client for the server at rawURL. A URL without a path
// (http://127.0.0.1:8000) gets /retrieve appended; a URL with one is used as
// given (Search-R1's retriever.url names the endpoint).
func NewClient(rawURL string, opts ClientOptions) (*Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("httpretrieve: %q is not an http(s) URL like http://127.0.0.1:8000/retrieve", rawURL)
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/retrieve"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 4
	}
	if opts.BaseBackoff <= 0 {
		opts.BaseBackoff = 200 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 5 * time.Second
	}
	if opts.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		opts.HTTPClient = &http.Client{Transport: tr}
	}
	return &Client{url: u.String(), opts: opts}, nil
}

// URL returns the endpoint the client posts to.
func (c *Client) URL() string { return c.url }

// Close releases the client's idle connections.
func (c *Client) Close() error {
	c.opts.HTTPClient.CloseIdleConnections()
	return nil
}

// StatusError is a non-200 answer from the server.
type StatusError struct {
	Status  int
	Message string // the server's "error" (dartc) or "detail" (FastAPI), else the body
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("httpretrieve: server answered %d: %s", e.Status, e.Message)
}

func (e *StatusError) retryable() bool {
	return e.Status == http.StatusTooManyRequests || e.Status >= 500
}

// Search posts the queries with return_scores true and returns the passages.
func (c *Client) Search(ctx context.Context, queries []string, topk int) ([][]retrieval.Passage, error) {
	if topk < 1 {
		return nil, retrieval.ErrBadTopK
	}
	body := appendRequest(nil, queries, topk)
	var lastErr error
	for attempt := 0; attempt < c.opts.MaxAttempts; attempt++ {
		if attempt > 0 {
			if err := sleep(ctx, c.backoff(attempt)); err != nil {
				return nil, fmt.Errorf("httpretrieve: %s: %w (after %v)", c.url, err, lastErr)
			}
		}
		res, err := c.post(ctx, body, len(queries))
		if err == nil {
			return res, nil
		}
		lastErr = err
		var se *StatusError
		if ctx.Err() != nil || (errors.As(err, &se) && !se.retryable()) || errors.Is(err, errBadResponse) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("httpretrieve: %s: giving up after %d attempts: %w", c.url, c.opts.MaxAttempts, lastErr)
}

// backoff is the wait before retry number attempt (1-based): exponential,
// capped, with the upper half jittered so that clients spread out.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.opts.BaseBackoff << (attempt - 1)
	if d > c.opts.MaxBackoff || d <= 0 {
		d = c.opts.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

var errBadResponse = errors.New("httpretrieve: malformed response")

func (c *Client) post(ctx context.Context, body []byte, nQueries int) ([][]retrieval.Passage, error) {
	actx, cancel := context.WithTimeout(ctx, c.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("httpretrieve: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("httpretrieve: post %s: %w", c.url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("httpretrieve: read response of %s: %w", c.url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &StatusError{Status: resp.StatusCode, Message: errorMessage(data)}
	}
	return decodeResponse(data, nQueries)
}

func errorMessage(body []byte) string {
	var e struct {
		Error  string          `json:"error"`
		Detail json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &e) == nil {
		if e.Error != "" {
			return e.Error
		}
		if len(e.Detail) > 0 {
			return string(e.Detail)
		}
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// wireDoc is a document as servers send it: Search-R1's dense retriever
// sends the corpus row ({"id","contents"}), its BM25 retriever adds "title"
// and "text".
type wireDoc struct {
	ID       json.RawMessage `json:"id"`
	Contents *string         `json:"contents"`
	Title    *string         `json:"title"`
	Text     *string         `json:"text"`
}

type wireItem struct {
	Document *wireDoc `json:"document"`
	Score    *float64 `json:"score"`
	wireDoc
}

func decodeResponse(data []byte, nQueries int) ([][]retrieval.Passage, error) {
	var resp struct {
		Result *[][]wireItem `json:"result"`
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadResponse, err)
	}
	if resp.Result == nil {
		return nil, fmt.Errorf(`%w: no "result" field`, errBadResponse)
	}
	if len(*resp.Result) != nQueries {
		return nil, fmt.Errorf("%w: %d result lists for %d queries", errBadResponse, len(*resp.Result), nQueries)
	}
	out := make([][]retrieval.Passage, nQueries)
	for qi, items := range *resp.Result {
		ps := make([]retrieval.Passage, len(items))
		for i, it := range items {
			doc := &it.wireDoc
			if it.Document != nil {
				doc = it.Document
			}
			p, err := doc.passage()
			if err != nil {
				return nil, fmt.Errorf("%w: query %d, passage %d: %v", errBadResponse, qi, i, err)
			}
			if it.Score != nil {
				p.Score = *it.Score
			}
			ps[i] = p
		}
		out[qi] = ps
	}
	return out, nil
}

func (d *wireDoc) passage() (retrieval.Passage, error) {
	var p retrieval.Passage
	switch {
	case d.Contents != nil:
		p.Contents = *d.Contents
	case d.Title != nil && d.Text != nil:
		p.Contents = "\"" + *d.Title + "\"\n" + *d.Text
	default:
		return p, errors.New(`document has no "contents" (nor "title" and "text")`)
	}
	if len(d.ID) > 0 && string(d.ID) != "null" {
		var s string
		if json.Unmarshal(d.ID, &s) == nil {
			p.ID = s
		} else {
			p.ID = string(d.ID)
		}
	}
	return p, nil
}
