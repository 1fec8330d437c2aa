package bm25

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dartc/dartc/retrieval/corpus"
)

func smallIndexBytes(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(buildFile(t, smallCorpus, corpus.FlashRAG, DefaultParams))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// exercise runs queries and reads every passage of an index that opened, so a
// damaged structure that slipped past Open shows up as an error or a panic.
func exercise(ix *Index) {
	for _, q := range []string{"apple pie", "plum trees fruit", "computers", "a the of water"} {
		ix.SearchOne(q, 5)
	}
	for d := 0; d < ix.Len(); d++ {
		ix.Doc(d)
	}
}

func TestTruncatedIndex(t *testing.T) {
	data := smallIndexBytes(t)
	for n := 0; n < len(data); n++ {
		_, err := OpenBytes(data[:n])
		if err == nil {
			t.Fatalf("index truncated to %d of %d bytes opened", n, len(data))
		}
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotIndex) {
			t.Fatalf("truncated to %d bytes: err = %v, want ErrCorrupt or ErrNotIndex", n, err)
		}
	}
}

func TestCorruptedIndex(t *testing.T) {
	data := smallIndexBytes(t)
	for i := range data {
		bad := append([]byte(nil), data...)
		bad[i] ^= 0x5a
		ix, err := OpenBytes(bad)
		if err == nil {
			t.Fatalf("index with byte %d flipped opened", i)
		}
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotIndex) && !errors.Is(err, ErrVersion) {
			t.Fatalf("byte %d flipped: err = %v", i, err)
		}
		_ = ix
		// Past the checksum, the structural checks must still hold: open
		// without it and use whatever opens.
		if ix, err := openBytes(bad, false); err == nil {
			exercise(ix)
		}
	}
}

func TestOpenErrorsAreClear(t *testing.T) {
	dir := t.TempDir()
	data := smallIndexBytes(t)
	trunc := filepath.Join(dir, "trunc.bm25")
	os.WriteFile(trunc, data[:len(data)/2], 0o644)
	_, err := Open(trunc)
	if err == nil || !strings.Contains(err.Error(), trunc) || !strings.Contains(err.Error(), "rebuild") || !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated file: err = %v", err)
	}
	jsonl := filepath.Join(dir, "corpus.jsonl")
	os.WriteFile(jsonl, []byte(`{"id":"1","contents":"a"}`), 0o644)
	if _, err := Open(jsonl); !errors.Is(err, ErrNotIndex) {
		t.Errorf("JSONL file: err = %v, want ErrNotIndex", err)
	}
	future := append([]byte(nil), data...)
	future[8] = 9
	if _, err := OpenBytes(future); !errors.Is(err, ErrVersion) {
		t.Errorf("version 9: err = %v, want ErrVersion", err)
	}
	if _, err := Open(filepath.Join(dir, "missing")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v", err)
	}
}

// FuzzOpenIndex feeds damaged index files to Open (with and without the
// checksum, so that mutations reach the structural checks): any result is
// fine except a panic, and an index that opens must answer queries.
func FuzzOpenIndex(f *testing.F) {
	f.Add(smallIndexBytes(f))
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, data []byte) {
		if ix, err := OpenBytes(data); err == nil {
			exercise(ix)
		}
		if ix, err := openBytes(data, false); err == nil {
			exercise(ix)
		}
	})
}
