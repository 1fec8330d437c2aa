package bm25

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"

	"github.com/dartc/dartc/retrieval/corpus"
)

// RowSource yields corpus rows until io.EOF; *corpus.Reader is one.
type RowSource interface {
	Next() (corpus.Row, error)
}

// BuildStats describes a finished build.
type BuildStats struct {
	Passages    int
	Terms       int
	TotalTokens uint64
	Bytes       int64
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// builder accumulates the inverted index in memory and spills passage text to
// a temporary file as it goes, so memory holds postings, not text.
type builder struct {
	termIDs  map[string]uint32
	terms    []string
	postings [][]byte // per term id: (doc delta, tf) uvarints
	lastDoc  []uint32
	docFreq  []uint32
	skips    [][]uint32 // per term id: (last doc, end offset) of each full block

	docLens     []uint32
	docOffsets  []uint64
	docBytes    uint64
	totalTokens uint64

	spill    *os.File
	spillBuf *bufio.Writer

	docTerms []uint32
	scratch  []byte
}

// Build reads every row of src, indexes it, and writes the index to path
// atomically. Passages are numbered in the order src yields them. The
// context is checked between batches of rows.
func Build(ctx context.Context, src RowSource, path string, p Params) (BuildStats, error) {
	if err := p.check(); err != nil {
		return BuildStats{}, err
	}
	dir := filepath.Dir(path)
	spill, err := os.CreateTemp(dir, filepath.Base(path)+".docs-*.tmp")
	if err != nil {
		return BuildStats{}, fmt.Errorf("bm25: build %s: %w", path, err)
	}
	defer func() {
		spill.Close()
		os.Remove(spill.Name())
	}()
	b := &builder{
		termIDs:    make(map[string]uint32),
		docOffsets: []uint64{0},
		spill:      spill,
		spillBuf:   bufio.NewWriterSize(spill, 1<<20),
	}
	// Three stages overlap: one goroutine reads rows, GOMAXPROCS workers
	// tokenize batches of them, and this goroutine adds them in corpus order.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan *rowBatch, 4)
	ordered := make(chan *rowBatch, 4+runtime.GOMAXPROCS(0))
	go readBatches(ctx, src, work, ordered)
	for range runtime.GOMAXPROCS(0) {
		go func() {
			for bt := range work {
				bt.tokenize()
			}
		}()
	}
	for bt := range ordered {
		select {
		case <-bt.done:
		case <-ctx.Done():
			return BuildStats{}, fmt.Errorf("bm25: build %s: %w", path, ctx.Err())
		}
		if bt.err != nil {
			return BuildStats{}, fmt.Errorf("bm25: build %s: %w", path, bt.err)
		}
		for i := range bt.rows {
			if err := b.add(bt.rows[i], bt.tokens(i)); err != nil {
				return BuildStats{}, fmt.Errorf("bm25: build %s: line %d: %w", path, bt.rows[i].Line, err)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return BuildStats{}, fmt.Errorf("bm25: build %s: %w", path, err)
	}
	if len(b.docLens) == 0 {
		return BuildStats{}, fmt.Errorf("bm25: build %s: the corpus has no passages", path)
	}
	if err := b.spillBuf.Flush(); err != nil {
		return BuildStats{}, fmt.Errorf("bm25: build %s: %w", path, err)
	}
	size, err := b.write(path, p)
	if err != nil {
		return BuildStats{}, fmt.Errorf("bm25: build %s: %w", path, err)
	}
	return BuildStats{Passages: len(b.docLens), Terms: len(b.terms), TotalTokens: b.totalTokens, Bytes: size}, nil
}

func (p Params) check() error {
	if math.IsNaN(p.K1) || math.IsInf(p.K1, 0) || p.K1 < 0 {
		return fmt.Errorf("bm25: k1 = %v: want a finite value ≥ 0", p.K1)
	}
	if math.IsNaN(p.B) || p.B < 0 || p.B > 1 {
		return fmt.Errorf("bm25: b = %v: want a value in [0, 1]", p.B)
	}
	return nil
}

// rowBatch is a run of consecutive rows and, once done is closed, their
// tokens, held back to back in text.
type rowBatch struct {
	rows    []corpus.Row
	text    []byte
	tokEnds []uint32 // end of each token in text
	rowEnds []int    // end of each row's tokens in tokEnds
	err     error
	done    chan struct{}
}

const rowsPerBatch = 256

func (bt *rowBatch) tokenize() {
	var buf []byte
	for _, row := range bt.rows {
		buf = Tokens(row.Contents, buf, func(tok []byte) {
			bt.text = append(bt.text, tok...)
			bt.tokEnds = append(bt.tokEnds, uint32(len(bt.text)))
		})
		bt.rowEnds = append(bt.rowEnds, len(bt.tokEnds))
	}
	close(bt.done)
}

// tokens returns row i's tokens as (text, ends) with ends relative to text.
func (bt *rowBatch) tokens(i int) rowTokens {
	first := 0
	if i > 0 {
		first = bt.rowEnds[i-1]
	}
	var start uint32
	if first > 0 {
		start = bt.tokEnds[first-1]
	}
	return rowTokens{text: bt.text, start: start, ends: bt.tokEnds[first:bt.rowEnds[i]]}
}

type rowTokens struct {
	text  []byte
	start uint32
	ends  []uint32
}

// readBatches reads src into batches, sending each to work (to tokenize) and
// to ordered (to add, in order). A read error ends the stream with a batch
// that carries it. Both channels are closed at the end.
func readBatches(ctx context.Context, src RowSource, work, ordered chan<- *rowBatch) {
	defer close(work)
	defer close(ordered)
	for {
		bt := &rowBatch{done: make(chan struct{})}
		var readErr error
		for len(bt.rows) < rowsPerBatch {
			row, err := src.Next()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					readErr = err
				}
				break
			}
			bt.rows = append(bt.rows, row)
		}
		if len(bt.rows) > 0 {
			select {
			case ordered <- bt:
			case <-ctx.Done():
				return
			}
			select {
			case work <- bt:
			case <-ctx.Done():
				return
			}
		}
		if readErr != nil || len(bt.rows) < rowsPerBatch {
			if readErr != nil {
				failed := &rowBatch{err: readErr, done: make(chan struct{})}
				close(failed.done)
				select {
				case ordered <- failed:
				case <-ctx.Done():
				}
			}
			return
		}
		if ctx.Err() != nil {
			return
		}
	}
}

func (b *builder) add(row corpus.Row, toks rowTokens) error {
	if len(b.docLens) == math.MaxUint32 {
		return errors.New("too many passages (the format holds 2^32−1)")
	}
	doc := uint32(len(b.docLens))
	b.docTerms = b.docTerms[:0]
	start := toks.start
	for _, end := range toks.ends {
		tok := toks.text[start:end]
		start = end
		id, ok := b.termIDs[string(tok)]
		if !ok {
			id = uint32(len(b.terms))
			s := string(tok)
			b.termIDs[s] = id
			b.terms = append(b.terms, s)
			b.postings = append(b.postings, nil)
			b.lastDoc = append(b.lastDoc, 0)
			b.docFreq = append(b.docFreq, 0)
			b.skips = append(b.skips, nil)
		}
		b.docTerms = append(b.docTerms, id)
	}
	if uint64(len(b.docTerms)) > math.MaxUint32 {
		return errors.New("passage has more than 2^32−1 tokens")
	}
	b.docLens = append(b.docLens, uint32(len(b.docTerms)))
	b.totalTokens += uint64(len(b.docTerms))
	slices.Sort(b.docTerms)
	for i := 0; i < len(b.docTerms); {
		j := i + 1
		for j < len(b.docTerms) && b.docTerms[j] == b.docTerms[i] {
			j++
		}
		id := b.docTerms[i]
		delta := doc
		if b.docFreq[id] > 0 {
			delta = doc - b.lastDoc[id]
		}
		b.postings[id] = binary.AppendUvarint(b.postings[id], uint64(delta))
		b.postings[id] = binary.AppendUvarint(b.postings[id], uint64(j-i))
		b.lastDoc[id] = doc
		b.docFreq[id]++
		if uint64(len(b.postings[id])) > math.MaxUint32 {
			return errors.New("a term's postings exceed 4 GiB")
		}
		if b.docFreq[id]%blockSize == 0 {
			b.skips[id] = append(b.skips[id], doc, uint32(len(b.postings[id])))
		}
		i = j
	}
	rec := binary.AppendUvarint(b.scratch[:0], uint64(len(row.ID)))
	rec = append(rec, row.ID...)
	b.scratch = rec
	if _, err := b.spillBuf.Write(rec); err != nil {
		return err
	}
	if _, err := b.spillBuf.WriteString(row.Contents); err != nil {
		return err
	}
	b.docBytes += uint64(len(rec) + len(row.Contents))
	b.docOffsets = append(b.docOffsets, b.docBytes)
	return nil
}

// write assembles the index file next to path and renames it into place.
func (b *builder) write(path string, p Params) (int64, error) {
	order := make([]uint32, len(b.terms))
	for i := range order {
		order[i] = uint32(i)
	}
	slices.SortFunc(order, func(x, y uint32) int {
		switch {
		case b.terms[x] < b.terms[y]:
			return -1
		case b.terms[x] > b.terms[y]:
			return 1
		}
		return 0
	})
	n, t := uint64(len(b.docLens)), uint64(len(b.terms))
	var termBytes, postingBytes, blocks uint64
	for i := range b.terms {
		termBytes += uint64(len(b.terms[i]))
		postingBytes += uint64(len(b.postings[i]))
		blocks += (uint64(b.docFreq[i]) + blockSize - 1) / blockSize
	}
	lengths := [numSections]uint64{
		secDocLens: 4 * n, secTermOffsets: 8 * (t + 1), secTermBytes: termBytes,
		secDocFreqs: 4 * t, secTermBounds: 4 * t, secPostingOffsets: 8 * (t + 1), secPostings: postingBytes,
		secSkips: 8 * blocks, secDocOffsets: 8 * (n + 1), secDocBytes: b.docBytes,
	}
	norm := lengthNorms(b.docLens, b.totalTokens, p)

	out, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return 0, err
	}
	committed := false
	defer func() {
		if !committed {
			out.Close()
			os.Remove(out.Name())
		}
	}()
	crc := crc32.New(castagnoli)
	w := &countingWriter{w: bufio.NewWriterSize(io.MultiWriter(out, crc), 1<<20)}

	hdr := make([]byte, 0, headerSize)
	hdr = append(hdr, magic...)
	hdr = binary.LittleEndian.AppendUint32(hdr, formatVersion)
	hdr = binary.LittleEndian.AppendUint32(hdr, headerSize)
	hdr = binary.LittleEndian.AppendUint64(hdr, math.Float64bits(p.K1))
	hdr = binary.LittleEndian.AppendUint64(hdr, math.Float64bits(p.B))
	hdr = binary.LittleEndian.AppendUint64(hdr, n)
	hdr = binary.LittleEndian.AppendUint64(hdr, t)
	hdr = binary.LittleEndian.AppendUint64(hdr, b.totalTokens)
	off := uint64(headerSize)
	for _, l := range lengths {
		hdr = binary.LittleEndian.AppendUint64(hdr, off)
		hdr = binary.LittleEndian.AppendUint64(hdr, l)
		off += l
	}
	w.Write(hdr)

	var buf [8]byte
	for _, l := range b.docLens {
		binary.LittleEndian.PutUint32(buf[:4], l)
		w.Write(buf[:4])
	}
	writeOffsets := func(sizes func(i uint32) uint64) {
		var o uint64
		binary.LittleEndian.PutUint64(buf[:], 0)
		w.Write(buf[:])
		for _, id := range order {
			o += sizes(id)
			binary.LittleEndian.PutUint64(buf[:], o)
			w.Write(buf[:])
		}
	}
	writeOffsets(func(id uint32) uint64 { return uint64(len(b.terms[id])) })
	for _, id := range order {
		w.WriteString(b.terms[id])
	}
	for _, id := range order {
		binary.LittleEndian.PutUint32(buf[:4], b.docFreq[id])
		w.Write(buf[:4])
	}
	for _, id := range order {
		binary.LittleEndian.PutUint32(buf[:4], math.Float32bits(termBound(b.postings[id], norm)))
		w.Write(buf[:4])
	}
	writeOffsets(func(id uint32) uint64 { return uint64(len(b.postings[id])) })
	for _, id := range order {
		w.Write(b.postings[id])
	}
	for _, id := range order {
		for _, v := range b.skips[id] {
			binary.LittleEndian.PutUint32(buf[:4], v)
			w.Write(buf[:4])
		}
		if b.docFreq[id]%blockSize != 0 {
			binary.LittleEndian.PutUint32(buf[:4], b.lastDoc[id])
			binary.LittleEndian.PutUint32(buf[4:], uint32(len(b.postings[id])))
			w.Write(buf[:])
		}
	}
	for _, o := range b.docOffsets {
		binary.LittleEndian.PutUint64(buf[:], o)
		w.Write(buf[:])
	}
	if _, err := b.spill.Seek(0, io.SeekStart); err != nil {
		return 0, err
	}
	if _, err := io.Copy(w, b.spill); err != nil {
		return 0, err
	}
	if w.err != nil {
		return 0, w.err
	}
	if w.n != off {
		return 0, fmt.Errorf("internal error: wrote %d bytes of sections, planned %d", w.n, off)
	}
	if err := writeTrailer(w, crc); err != nil {
		return 0, err
	}
	// CreateTemp makes the file 0600; the index is an output like any
	// other, readable by whoever serves it.
	if err := out.Chmod(0o644); err != nil {
		return 0, err
	}
	if err := out.Sync(); err != nil {
		return 0, err
	}
	if err := out.Close(); err != nil {
		return 0, err
	}
	if err := os.Rename(out.Name(), path); err != nil {
		return 0, err
	}
	committed = true
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return int64(off + trailerSize), nil
}

// lengthNorms returns k1·(1 − b + b·|d|/avgdl) for every passage; Open
// computes the same values from the stored lengths.
func lengthNorms(docLens []uint32, totalTokens uint64, p Params) []float64 {
	avgdl := float64(totalTokens) / float64(len(docLens))
	norm := make([]float64, len(docLens))
	for d, l := range docLens {
		norm[d] = lengthNorm(l, avgdl, p)
	}
	return norm
}

func lengthNorm(docLen uint32, avgdl float64, p Params) float64 {
	if avgdl > 0 {
		return p.K1 * (1 - p.B + p.B*float64(docLen)/avgdl)
	}
	return p.K1 * (1 - p.B)
}

// termBound is the largest tf/(tf + norm) over a term's postings, rounded
// up to a float32 so that it bounds every contribution of the term.
func termBound(postings []byte, norm []float64) float32 {
	var best float64
	var doc uint64
	for len(postings) > 0 {
		delta, n1 := binary.Uvarint(postings)
		tf, n2 := binary.Uvarint(postings[n1:])
		postings = postings[n1+n2:]
		doc += delta
		f := float64(tf)
		best = max(best, f/(f+norm[doc]))
	}
	b := float32(best)
	if float64(b) < best {
		b = math.Nextafter32(b, 2)
	}
	return b
}

func writeTrailer(w *countingWriter, crc hash.Hash32) error {
	if err := w.w.Flush(); err != nil {
		return err
	}
	var tr [trailerSize]byte
	binary.LittleEndian.PutUint32(tr[:4], crc.Sum32())
	copy(tr[4:], trailerMagic)
	w.Write(tr[:])
	if w.err != nil {
		return w.err
	}
	return w.w.Flush()
}

// countingWriter remembers the first error so the write sequence above can
// stay linear; the caller checks err once.
type countingWriter struct {
	w   *bufio.Writer
	n   uint64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += uint64(n)
	c.err = err
	return n, err
}

func (c *countingWriter) WriteString(s string) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.WriteString(s)
	c.n += uint64(n)
	c.err = err
	return n, err
}
