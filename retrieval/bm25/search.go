package bm25

import (
	"container/heap"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/dartc/dartc/retrieval"
)

// Hit is one scored passage.
type Hit struct {
	Doc   int
	Score float64
}

// scratch is per-query working memory, pooled: a dense score accumulator
// over all passages and the list of passages it touched.
type scratch struct {
	acc     []float64
	touched []uint32
	cands   []uint32
	tok     []byte
	// termIndex maps a query's distinct terms to their place in qtf, so a
	// repeated token costs a map lookup, not a string: a long query of one
	// word repeated allocates once.
	termIndex map[string]int
	terms     []string
	qtf       []int
}

var _ retrieval.Searcher = (*Index)(nil)

func (ix *Index) getScratch() *scratch {
	if s, ok := ix.scratchPool.Get().(*scratch); ok {
		return s
	}
	return &scratch{acc: make([]float64, ix.n)}
}

// SearchOne returns the top topk passages for one query (fewer when fewer
// passages contain a query term), best first.
func (ix *Index) SearchOne(query string, topk int) ([]Hit, error) {
	return ix.searchOne(context.Background(), query, topk, true)
}

// queryTerm is one distinct query term found in the index.
type queryTerm struct {
	text   string
	id     uint32
	df     uint32
	weight float64 // qtf · idf
	bound  float64 // weight · the term's stored bound: no passage gains more from it
}

// boundSlack covers float rounding between a bound and the contributions
// it bounds (a few ulps; this is many orders more).
const boundSlack = 1 + 1e-9

// searchOne scores the query term at a time in descending bound order. With
// prune, once the k-th best partial score exceeds what the remaining terms
// could add, passages not yet seen cannot enter the top k, and the remaining
// terms are only looked up, through the skip blocks, for the passages that
// still can (MaxScore). Without prune every posting is read; the result is
// the same either way. ctx is checked before each term: one query of many
// common terms can take seconds on a large index, and a server's deadline
// must stop it.
func (ix *Index) searchOne(ctx context.Context, query string, topk int, prune bool) ([]Hit, error) {
	if topk < 1 {
		return nil, retrieval.ErrBadTopK
	}
	select {
	case ix.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-ix.slots }()
	s := ix.getScratch()
	defer ix.scratchPool.Put(s)
	defer func() {
		for _, d := range s.touched {
			s.acc[d] = 0
		}
		s.touched = s.touched[:0]
	}()

	terms := ix.queryTerms(s, query)
	// rest[i] bounds what terms i.. can add to any passage.
	rest := make([]float64, len(terms)+1)
	for i := len(terms) - 1; i >= 0; i-- {
		rest[i] = rest[i+1] + terms[i].bound
	}
	i := 0
	threshold := math.Inf(-1)
	for ; i < len(terms); i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if prune && i > 0 && len(s.touched) >= topk {
			top := topHits(s.acc, s.touched, topk)
			threshold = top[topk-1].Score
			if threshold > rest[i]*boundSlack {
				break
			}
		}
		if err := ix.accumulate(s, terms[i].id, terms[i].df, terms[i].weight); err != nil {
			return nil, err
		}
	}
	if i == len(terms) {
		return topHits(s.acc, s.touched, topk), nil
	}
	cands := s.cands[:0]
	for _, d := range s.touched {
		if s.acc[d]+rest[i]*boundSlack >= threshold {
			cands = append(cands, d)
		}
	}
	slices.Sort(cands)
	s.cands = cands
	for ; i < len(terms); i++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := ix.accumulateAt(s, terms[i].id, terms[i].weight, cands); err != nil {
			return nil, err
		}
		// Scores only grow and what is left to add only shrinks: drop the
		// candidates that can no longer reach the k-th best.
		if i+1 < len(terms) && len(cands) > topk {
			threshold = topHits(s.acc, cands, topk)[topk-1].Score
			kept := cands[:0]
			for _, d := range cands {
				if s.acc[d]+rest[i+1]*boundSlack >= threshold {
					kept = append(kept, d)
				}
			}
			cands = kept
		}
	}
	return topHits(s.acc, cands, topk), nil
}

// queryTerms analyzes the query into its distinct indexed terms, sorted by
// descending bound, then bytewise: the order contributions are added in.
func (ix *Index) queryTerms(s *scratch, query string) []queryTerm {
	if s.termIndex == nil {
		s.termIndex = make(map[string]int)
	}
	clear(s.termIndex)
	s.terms, s.qtf = s.terms[:0], s.qtf[:0]
	s.tok = Tokens(query, s.tok, func(tok []byte) {
		if i, ok := s.termIndex[string(tok)]; ok { // no allocation for a lookup
			s.qtf[i]++
			return
		}
		t := string(tok)
		s.termIndex[t] = len(s.terms)
		s.terms = append(s.terms, t)
		s.qtf = append(s.qtf, 1)
	})
	if len(s.termIndex) > 1<<12 {
		s.termIndex = nil // a pooled scratch should not keep one huge query's map
	}
	le := binary.LittleEndian
	var terms []queryTerm
	for i, text := range s.terms {
		if id, ok := ix.lookup([]byte(text)); ok {
			df := le.Uint32(ix.docFreqs[4*id:])
			idf := math.Log(1 + (float64(ix.n)-float64(df)+0.5)/(float64(df)+0.5))
			w := float64(s.qtf[i]) * idf
			bound := w * float64(math.Float32frombits(le.Uint32(ix.termBounds[4*id:])))
			terms = append(terms, queryTerm{text: text, id: id, df: df, weight: w, bound: bound})
		}
	}
	slices.SortFunc(terms, func(a, b queryTerm) int {
		switch {
		case a.bound > b.bound:
			return -1
		case a.bound < b.bound:
			return 1
		}
		return strings.Compare(a.text, b.text)
	})
	return terms
}

// accumulateAt adds term id's contribution to the passages in cands (sorted
// ascending), decoding only the skip blocks that may hold them.
func (ix *Index) accumulateAt(s *scratch, id uint32, weight float64, cands []uint32) error {
	le := binary.LittleEndian
	c := cursor{
		p:     ix.postings[le.Uint64(ix.postingOffsets[8*id:]):le.Uint64(ix.postingOffsets[8*id+8:])],
		skips: ix.skips[8*uint64(ix.blockStart[id]) : 8*uint64(ix.blockStart[id+1])],
		n:     uint64(ix.n),
	}
	for _, d := range cands {
		tf, found, err := c.seek(uint64(d))
		if err != nil {
			return corrupt("postings of term %d: %v", id, err)
		}
		if found {
			f := float64(tf)
			s.acc[d] += weight * f / (f + ix.norm[d])
		}
		if c.exhausted() {
			break
		}
	}
	return nil
}

// cursor walks one term's postings forward, jumping over skip blocks.
type cursor struct {
	p     []byte // the term's postings
	skips []byte // its skip entries: last passage u32 | block end u32
	n     uint64 // passages in the index

	blk   int    // current block
	pos   int    // next byte to decode in p
	doc   uint64 // passage of the current posting
	tf    uint64
	valid bool // doc and tf hold a decoded posting
	fresh bool // the next posting is the first of its block
}

func (c *cursor) blocks() int            { return len(c.skips) / 8 }
func (c *cursor) lastDoc(blk int) uint64 { return uint64(binary.LittleEndian.Uint32(c.skips[8*blk:])) }
func (c *cursor) blockEnd(blk int) int   { return int(binary.LittleEndian.Uint32(c.skips[8*blk+4:])) }
func (c *cursor) exhausted() bool        { return c.blk >= c.blocks() }

// seek moves to the first posting with passage ≥ target and reports its tf
// and whether its passage is target.
func (c *cursor) seek(target uint64) (tf uint64, found bool, err error) {
	if c.valid && c.doc >= target {
		return c.tf, c.doc == target, nil
	}
	jumped := !c.valid
	for c.blk < c.blocks() && c.lastDoc(c.blk) < target {
		c.blk++
		jumped = true
	}
	if c.exhausted() {
		c.valid = false
		return 0, false, nil
	}
	if jumped {
		c.pos, c.doc, c.fresh = 0, 0, true
		if c.blk > 0 {
			c.pos, c.doc = c.blockEnd(c.blk-1), c.lastDoc(c.blk-1)
		}
	}
	end := c.blockEnd(c.blk)
	for {
		if c.pos >= end || end > len(c.p) {
			return 0, false, errors.New("skip block ends before its last passage")
		}
		delta, n1 := binary.Uvarint(c.p[c.pos:end])
		if n1 <= 0 {
			return 0, false, errors.New("malformed posting")
		}
		tf, n2 := binary.Uvarint(c.p[c.pos+n1 : end])
		if n2 <= 0 || tf == 0 || (delta == 0 && !(c.fresh && c.blk == 0)) {
			return 0, false, errors.New("malformed posting")
		}
		c.pos += n1 + n2
		c.doc += delta
		c.tf, c.valid, c.fresh = tf, true, false
		if c.doc >= c.n {
			return 0, false, fmt.Errorf("posting names passage %d of %d", c.doc, c.n)
		}
		if c.doc >= target {
			return c.tf, c.doc == target, nil
		}
	}
}

// accumulate adds weight·tf/(tf+norm) for every passage in term id's postings.
func (ix *Index) accumulate(s *scratch, id, df uint32, weight float64) error {
	le := binary.LittleEndian
	p := ix.postings[le.Uint64(ix.postingOffsets[8*id:]):le.Uint64(ix.postingOffsets[8*id+8:])]
	var doc uint64
	for k := uint32(0); k < df; k++ {
		delta, n1 := binary.Uvarint(p)
		if n1 <= 0 {
			return corrupt("postings of term %d end early", id)
		}
		tf, n2 := binary.Uvarint(p[n1:])
		if n2 <= 0 || tf == 0 || (k > 0 && delta == 0) {
			return corrupt("postings of term %d are malformed", id)
		}
		p = p[n1+n2:]
		doc += delta
		if doc >= uint64(ix.n) {
			return corrupt("postings of term %d name passage %d of %d", id, doc, ix.n)
		}
		if s.acc[doc] == 0 {
			s.touched = append(s.touched, uint32(doc))
		}
		f := float64(tf)
		s.acc[doc] += weight * f / (f + ix.norm[doc])
	}
	if len(p) != 0 {
		return corrupt("postings of term %d have %d stray bytes", id, len(p))
	}
	return nil
}

// hitHeap is a min-heap whose root is the worst kept hit: lowest score, and
// among equal scores the highest passage number.
type hitHeap []Hit

func worse(a, b Hit) bool { return a.Score < b.Score || (a.Score == b.Score && a.Doc > b.Doc) }

func (h hitHeap) Len() int           { return len(h) }
func (h hitHeap) Less(i, j int) bool { return worse(h[i], h[j]) }
func (h hitHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *hitHeap) Push(x any)        { *h = append(*h, x.(Hit)) }
func (h *hitHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// topHits returns the best topk of docs by their scores in acc, best first.
func topHits(acc []float64, docs []uint32, topk int) []Hit {
	h := make(hitHeap, 0, min(topk, len(docs)))
	for _, d := range docs {
		hit := Hit{Doc: int(d), Score: acc[d]}
		if len(h) < topk {
			heap.Push(&h, hit)
		} else if worse(h[0], hit) {
			h[0] = hit
			heap.Fix(&h, 0)
		}
	}
	out := make([]Hit, len(h))
	for i := len(out) - 1; i >= 0; i-- {
		out[i] = heap.Pop(&h).(Hit)
	}
	return out
}

// Search implements retrieval.Searcher.
// A batch of queries (Search-R1's trainer sends all of a step's queries in
// one request) is spread over up to GOMAXPROCS goroutines; results keep the
// query order.
func (ix *Index) Search(ctx context.Context, queries []string, topk int) ([][]retrieval.Passage, error) {
	if topk < 1 {
		return nil, retrieval.ErrBadTopK
	}
	out := make([][]retrieval.Passage, len(queries))
	errs := make([]error, len(queries))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(cap(ix.slots), len(queries)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				qi := int(next.Add(1) - 1)
				if qi >= len(queries) {
					return
				}
				out[qi], errs[qi] = ix.searchPassages(ctx, queries[qi], topk)
				if errs[qi] != nil {
					next.Store(int64(len(queries))) // stop the others early
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (ix *Index) searchPassages(ctx context.Context, q string, topk int) ([]retrieval.Passage, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bm25: search: %w", err)
	}
	hits, err := ix.searchOne(ctx, q, topk, true)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("bm25: search: %w", err) // the query may be long: not in the message
		}
		return nil, fmt.Errorf("bm25: search %q: %w", q, err)
	}
	ps := make([]retrieval.Passage, len(hits))
	for i, h := range hits {
		id, contents, err := ix.Doc(h.Doc)
		if err != nil {
			return nil, fmt.Errorf("bm25: search %q: %w", q, err)
		}
		ps[i] = retrieval.Passage{ID: id, Contents: contents, Score: h.Score}
	}
	return ps, nil
}
