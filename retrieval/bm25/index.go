package bm25

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"runtime"
	"sync"
)

// Index is an opened BM25 index. It is immutable and safe for concurrent use.
type Index struct {
	params      Params
	n           uint32
	t           uint32
	totalTokens uint64
	avgdl       float64

	docLens        []byte
	termOffsets    []byte
	termBytes      []byte
	docFreqs       []byte
	termBounds     []byte
	postingOffsets []byte
	postings       []byte
	skips          []byte
	docOffsets     []byte
	docBytes       []byte

	// norm[d] = k1·(1 − b + b·|d|/avgdl), computed once at open.
	norm []float64
	// blockStart[t] is the index of term t's first skip entry; blockStart[T]
	// is the number of skip entries.
	blockStart []uint32

	// scratchPool holds *scratch sized for this index; slots bounds how
	// many searches run at once (searches are CPU-bound, and each holds an
	// N-sized accumulator), so memory stays under GOMAXPROCS × 16 bytes × N however
	// many goroutines call Search.
	scratchPool sync.Pool
	slots       chan struct{}
}

// Open reads and checks the index file at path. The magic, version and
// trailer are checked from the open file before the whole file is read, so
// a multi-gigabyte corpus passed by mistake is refused without loading it.
func Open(path string) (*Index, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bm25: open index: %w", err)
	}
	defer f.Close()
	fail := func(err error) (*Index, error) {
		return nil, fmt.Errorf("bm25: open %s: %w (rebuild it with `dartc search index`)", path, err)
	}
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("bm25: open index: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("bm25: open %s: not a regular file: give the index file written by `dartc search index`", path)
	}
	size := info.Size()
	if err := checkEnds(f, size); err != nil {
		if errors.Is(err, ErrNotIndex) {
			return nil, fmt.Errorf("bm25: open %s: %w (a corpus JSONL must be indexed first: dartc search index --corpus %s -o INDEX.bm25)", path, err, path)
		}
		return fail(err)
	}
	if int64(int(size)) != size {
		return fail(fmt.Errorf("%d bytes do not fit in memory on this platform", size))
	}
	data := make([]byte, size)
	if _, err := io.ReadFull(io.NewSectionReader(f, 0, size), data); err != nil {
		return nil, fmt.Errorf("bm25: open %s: read: %w", path, err)
	}
	ix, err := openBytes(data, true)
	if err != nil {
		return fail(err)
	}
	return ix, nil
}

// checkEnds does openBytes's first checks (magic, version, header size,
// trailer) reading only the file's first and last bytes.
func checkEnds(f io.ReaderAt, size int64) error {
	head := make([]byte, 16)
	n, err := f.ReadAt(head, 0)
	if n < len(magic) || string(head[:len(magic)]) != magic {
		if err != nil && err != io.EOF {
			return err
		}
		return ErrNotIndex
	}
	if size < headerSize+trailerSize {
		return corrupt("%d bytes is shorter than the header and trailer (%d bytes)", size, headerSize+trailerSize)
	}
	le := binary.LittleEndian
	if v := le.Uint32(head[8:]); v != formatVersion {
		return fmt.Errorf("%w %d (this build reads version %d)", ErrVersion, v, formatVersion)
	}
	if hs := le.Uint32(head[12:]); hs != headerSize {
		return corrupt("header size %d, want %d", hs, headerSize)
	}
	tr := make([]byte, trailerSize)
	if _, err := f.ReadAt(tr, size-trailerSize); err != nil {
		return err
	}
	if string(tr[4:]) != trailerMagic {
		return corrupt("trailer missing (file truncated?)")
	}
	return nil
}

// OpenBytes checks an index held in memory; the Index keeps data.
func OpenBytes(data []byte) (*Index, error) {
	return openBytes(data, true)
}

func corrupt(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrCorrupt, fmt.Sprintf(format, args...))
}

func openBytes(data []byte, verifyChecksum bool) (*Index, error) {
	if len(data) < len(magic) || string(data[:len(magic)]) != magic {
		return nil, ErrNotIndex
	}
	if len(data) < headerSize+trailerSize {
		return nil, corrupt("%d bytes is shorter than the header and trailer (%d bytes)", len(data), headerSize+trailerSize)
	}
	le := binary.LittleEndian
	if v := le.Uint32(data[8:]); v != formatVersion {
		return nil, fmt.Errorf("%w %d (this build reads version %d)", ErrVersion, v, formatVersion)
	}
	if hs := le.Uint32(data[12:]); hs != headerSize {
		return nil, corrupt("header size %d, want %d", hs, headerSize)
	}
	body := len(data) - trailerSize
	if string(data[body+4:]) != trailerMagic {
		return nil, corrupt("trailer missing (file truncated?)")
	}
	if verifyChecksum {
		if got, want := crc32.Checksum(data[:body], castagnoli), le.Uint32(data[body:]); got != want {
			return nil, corrupt("checksum mismatch: computed %08x, stored %08x", got, want)
		}
	}
	ix := &Index{params: Params{K1: math.Float64frombits(le.Uint64(data[16:])), B: math.Float64frombits(le.Uint64(data[24:]))}}
	if err := ix.params.check(); err != nil {
		return nil, corrupt("%v", err)
	}
	n, t, total := le.Uint64(data[32:]), le.Uint64(data[40:]), le.Uint64(data[48:])
	if n == 0 || n >= math.MaxUint32 || t >= math.MaxUint32 {
		return nil, corrupt("%d passages and %d terms are out of range", n, t)
	}
	ix.n, ix.t, ix.totalTokens = uint32(n), uint32(t), total
	want := [numSections]uint64{secDocLens: 4 * n, secTermOffsets: 8 * (t + 1), secDocFreqs: 4 * t,
		secTermBounds: 4 * t, secPostingOffsets: 8 * (t + 1), secDocOffsets: 8 * (n + 1)}
	var secs [numSections][]byte
	next := uint64(headerSize)
	for i := range secs {
		off, l := le.Uint64(data[56+16*i:]), le.Uint64(data[64+16*i:])
		if off != next || l > uint64(body) || off+l > uint64(body) {
			return nil, corrupt("section %q at %d+%d does not follow at %d within %d bytes", sectionNames[i], off, l, next, body)
		}
		if want[i] != 0 && l != want[i] {
			return nil, corrupt("section %q has %d bytes, want %d", sectionNames[i], l, want[i])
		}
		secs[i] = data[off : off+l : off+l]
		next = off + l
	}
	if next != uint64(body) {
		return nil, corrupt("%d stray bytes before the trailer", uint64(body)-next)
	}
	ix.docLens, ix.termOffsets, ix.termBytes = secs[secDocLens], secs[secTermOffsets], secs[secTermBytes]
	ix.docFreqs, ix.termBounds = secs[secDocFreqs], secs[secTermBounds]
	ix.postingOffsets, ix.postings, ix.skips = secs[secPostingOffsets], secs[secPostings], secs[secSkips]
	ix.docOffsets, ix.docBytes = secs[secDocOffsets], secs[secDocBytes]

	if err := checkOffsets(ix.termOffsets, len(ix.termBytes), "term"); err != nil {
		return nil, err
	}
	if err := checkOffsets(ix.postingOffsets, len(ix.postings), "posting"); err != nil {
		return nil, err
	}
	if err := checkOffsets(ix.docOffsets, len(ix.docBytes), "doc"); err != nil {
		return nil, err
	}
	var prev []byte
	for i := uint32(0); i < ix.t; i++ {
		term := ix.term(i)
		if len(term) == 0 || (i > 0 && bytes.Compare(prev, term) >= 0) {
			return nil, corrupt("term %d is empty or out of order", i)
		}
		prev = term
		if df := le.Uint32(ix.docFreqs[4*i:]); df == 0 || df > ix.n {
			return nil, corrupt("term %d has document frequency %d of %d passages", i, df, ix.n)
		}
		if bound := math.Float32frombits(le.Uint32(ix.termBounds[4*i:])); !(bound > 0 && bound <= 1) {
			return nil, corrupt("term %d has score bound %v, want (0, 1]", i, bound)
		}
	}
	if err := ix.checkSkips(); err != nil {
		return nil, err
	}
	var sum uint64
	for d := uint32(0); d < ix.n; d++ {
		sum += uint64(le.Uint32(ix.docLens[4*d:]))
	}
	if sum != total {
		return nil, corrupt("passage lengths sum to %d tokens, header says %d", sum, total)
	}
	ix.slots = make(chan struct{}, runtime.GOMAXPROCS(0))
	ix.avgdl = float64(total) / float64(n)
	ix.norm = make([]float64, n)
	for d := range ix.norm {
		ix.norm[d] = lengthNorm(le.Uint32(ix.docLens[4*d:]), ix.avgdl, ix.params)
	}
	return ix, nil
}

// checkSkips verifies the skip table: ceil(df/128) blocks per term, last
// passages increasing and in range, block ends increasing and ending at the
// end of the term's postings.
func (ix *Index) checkSkips() error {
	le := binary.LittleEndian
	ix.blockStart = make([]uint32, ix.t+1)
	var total uint64
	for i := uint32(0); i < ix.t; i++ {
		ix.blockStart[i] = uint32(total)
		total += (uint64(le.Uint32(ix.docFreqs[4*i:])) + blockSize - 1) / blockSize
		if total > uint64(len(ix.skips))/8 {
			return corrupt("skip table has %d entries, the document frequencies need more", len(ix.skips)/8)
		}
	}
	ix.blockStart[ix.t] = uint32(total)
	if total*8 != uint64(len(ix.skips)) {
		return corrupt("skip table has %d bytes, want %d", len(ix.skips), total*8)
	}
	for i := uint32(0); i < ix.t; i++ {
		plen := le.Uint64(ix.postingOffsets[8*i+8:]) - le.Uint64(ix.postingOffsets[8*i:])
		var prevDoc, prevEnd uint64
		for k := ix.blockStart[i]; k < ix.blockStart[i+1]; k++ {
			doc, end := uint64(le.Uint32(ix.skips[8*k:])), uint64(le.Uint32(ix.skips[8*k+4:]))
			first := k == ix.blockStart[i]
			if doc >= uint64(ix.n) || end > plen || (!first && (doc <= prevDoc || end <= prevEnd)) || (first && end == 0) {
				return corrupt("skip block %d of term %d is out of order or range", k-ix.blockStart[i], i)
			}
			prevDoc, prevEnd = doc, end
		}
		if prevEnd != plen {
			return corrupt("skip blocks of term %d end at %d, its postings at %d", i, prevEnd, plen)
		}
	}
	return nil
}

// checkOffsets verifies an offset table: starts at 0, never decreases, ends
// at the length of the section it points into.
func checkOffsets(tab []byte, end int, what string) error {
	le := binary.LittleEndian
	var prev uint64
	for i := 0; i+8 <= len(tab); i += 8 {
		o := le.Uint64(tab[i:])
		if (i == 0 && o != 0) || o < prev || o > uint64(end) {
			return corrupt("%s offset %d is %d (previous %d, section length %d)", what, i/8, o, prev, end)
		}
		prev = o
	}
	if prev != uint64(end) {
		return corrupt("%s offsets end at %d, section length %d", what, prev, end)
	}
	return nil
}

// Params returns the BM25 parameters the index was built with.
func (ix *Index) Params() Params { return ix.params }

// Len returns the number of passages.
func (ix *Index) Len() int { return int(ix.n) }

// NumTerms returns the number of distinct terms.
func (ix *Index) NumTerms() int { return int(ix.t) }

func (ix *Index) term(i uint32) []byte {
	le := binary.LittleEndian
	return ix.termBytes[le.Uint64(ix.termOffsets[8*i:]):le.Uint64(ix.termOffsets[8*i+8:])]
}

// lookup finds a term by binary search over the sorted term table.
func (ix *Index) lookup(term []byte) (uint32, bool) {
	lo, hi := uint32(0), ix.t
	for lo < hi {
		mid := lo + (hi-lo)/2
		switch c := bytes.Compare(ix.term(mid), term); {
		case c == 0:
			return mid, true
		case c < 0:
			lo = mid + 1
		default:
			hi = mid
		}
	}
	return 0, false
}

// Doc returns the id and contents of passage d.
func (ix *Index) Doc(d int) (id, contents string, err error) {
	if d < 0 || d >= int(ix.n) {
		return "", "", fmt.Errorf("bm25: passage %d out of range [0, %d)", d, ix.n)
	}
	le := binary.LittleEndian
	rec := ix.docBytes[le.Uint64(ix.docOffsets[8*d:]):le.Uint64(ix.docOffsets[8*d+8:])]
	l, k := binary.Uvarint(rec)
	if k <= 0 || l > uint64(len(rec)-k) {
		return "", "", corrupt("passage %d record is malformed", d)
	}
	return string(rec[k : k+int(l)]), string(rec[k+int(l):]), nil
}
