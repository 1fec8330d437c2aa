package bm25

import (
	"container/heap"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"

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
	tok     []byte
	terms   []string
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
	if topk < 1 {
		return nil, retrieval.ErrBadTopK
	}
	s := ix.getScratch()
	defer ix.scratchPool.Put(s)

	s.terms = s.terms[:0]
	s.tok = Tokens(query, s.tok, func(tok []byte) { s.terms = append(s.terms, string(tok)) })
	slices.Sort(s.terms)
	le := binary.LittleEndian
	var err error
	for i := 0; i < len(s.terms) && err == nil; {
		j := i + 1
		for j < len(s.terms) && s.terms[j] == s.terms[i] {
			j++
		}
		if id, ok := ix.lookup([]byte(s.terms[i])); ok {
			df := le.Uint32(ix.docFreqs[4*id:])
			idf := math.Log(1 + (float64(ix.n)-float64(df)+0.5)/(float64(df)+0.5))
			err = ix.accumulate(s, id, df, float64(j-i)*idf)
		}
		i = j
	}
	var hits []Hit
	if err == nil {
		hits = topHits(s, topk)
	}
	for _, d := range s.touched {
		s.acc[d] = 0
	}
	s.touched = s.touched[:0]
	return hits, err
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

func topHits(s *scratch, topk int) []Hit {
	h := make(hitHeap, 0, min(topk, len(s.touched)))
	for _, d := range s.touched {
		hit := Hit{Doc: int(d), Score: s.acc[d]}
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
func (ix *Index) Search(ctx context.Context, queries []string, topk int) ([][]retrieval.Passage, error) {
	out := make([][]retrieval.Passage, len(queries))
	for qi, q := range queries {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("bm25: search: %w", err)
		}
		hits, err := ix.SearchOne(q, topk)
		if err != nil {
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
		out[qi] = ps
	}
	return out, nil
}
