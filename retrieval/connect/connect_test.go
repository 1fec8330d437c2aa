package connect

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

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
