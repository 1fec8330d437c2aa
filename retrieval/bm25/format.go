package bm25

import (
	"errors"
	"fmt"
	"io"
	"os"
)

const (
	magic         = "DARTBM25"
	trailerMagic  = "BM25"
	formatVersion = 1
	numSections   = 10
	headerSize    = 8 + 4 + 4 + 8 + 8 + 8 + 8 + 8 + numSections*16
	trailerSize   = 8
	// blockSize is the number of postings per skip block.
	blockSize = 128
)

// Section indices, in file order.
const (
	secDocLens = iota
	secTermOffsets
	secTermBytes
	secDocFreqs
	secTermBounds
	secPostingOffsets
	secPostings
	secSkips
	secDocOffsets
	secDocBytes
)

var sectionNames = [numSections]string{
	"doc lengths", "term offsets", "term bytes", "document frequencies", "term bounds",
	"posting offsets", "postings", "skips", "doc offsets", "doc bytes",
}

// Errors callers can test with errors.Is.
var (
	// ErrNotIndex: the file does not start with the index magic.
	ErrNotIndex = errors.New("bm25: not a dartc BM25 index")
	// ErrVersion: the file is an index of a format version this build cannot read.
	ErrVersion = errors.New("bm25: unsupported index format version")
	// ErrCorrupt: the file is truncated or damaged.
	ErrCorrupt = errors.New("bm25: index file is corrupt")
)

// Params are the BM25 parameters stored in an index.
type Params struct {
	K1 float64
	B  float64
}

// DefaultParams are Pyserini's defaults.
var DefaultParams = Params{K1: 0.9, B: 0.4}

// Recognise reports whether the file at path starts with the index magic
// (ErrNotIndex when it does not): what `search index --force` may replace.
func Recognise(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("bm25: %w", err)
	}
	defer f.Close()
	head := make([]byte, len(magic))
	if _, err := io.ReadFull(f, head); err != nil || string(head) != magic {
		return ErrNotIndex
	}
	return nil
}
