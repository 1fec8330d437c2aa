package connect

import (
	"fmt"
	"strings"

	"github.com/dartc/dartc/retrieval"
	"github.com/dartc/dartc/retrieval/bm25"
	"github.com/dartc/dartc/retrieval/httpretrieve"
)

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
		return httpretrieve.NewClient(spec, client)
	}
	return bm25.Open(spec)
}
