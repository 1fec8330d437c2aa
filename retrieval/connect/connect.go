package connect

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dartc/dartc/retrieval"
	"github.com/dartc/dartc/retrieval/bm25"
	"github.com/dartc/dartc/retrieval/httpretrieve"
)

// probeTimeout bounds the check Open makes of a /retrieve URL.
const probeTimeout = 2 * time.Minute

// IsURL reports whether spec names a server rather than a file.
func IsURL(spec string) bool {
	return strings.HasPrefix(spec, "http://") || strings.HasPrefix(spec, "https://")
}

// Open returns a Searcher for spec: a client of the /retrieve server at an
// http(s) URL, or the BM25 index file at a path.
func Open(spec string, client httpretrieve.ClientOptions) (retrieval.Searcher, error) {
	if spec == "" {
		return nil, fmt.Errorf("connect: no index given: pass a BM25 index file (built by `dartc search index`) or a /retrieve URL")
	}
	if IsURL(spec) {
		c, err := httpretrieve.NewClient(spec, client)
		if err != nil {
			return nil, err
		}
		// Probe once (with the client's bounded retries and backoff), so a
		// wrong URL or a server not started fails now, not at the first
		// search of a long run.
		ctx, cancel := context.WithTimeout(context.Background(), probeTimeout)
		defer cancel()
		if _, err := c.Search(ctx, []string{"dartc connectivity check"}, 1); err != nil {
			return nil, fmt.Errorf("connect: the retriever %s does not answer: %w (start it with dartc search serve --index FILE, or Search-R1's retrieval_server.py, or fix the URL)", c.URL(), err)
		}
		return c, nil
	}
	return bm25.Open(spec)
}
