package tokenizer

import "sync"

// merge is one entry of the merge table: the rank of the pair (its line in
// merges.txt; lower merges first) and the id of the merged token.
type merge struct {
	rank int32
	id   int32
}

func pairKey(left, right int32) uint64 { return uint64(uint32(left))<<32 | uint64(uint32(right)) }

// shortPiece is the length up to which bpe uses the quadratic scan; above it
// the heap keeps long pieces (a run of 100k spaces) linear-logarithmic.
const shortPiece = 48

// bpe appends the ids of one pre-tokenized piece to dst. Both algorithms
// apply the lowest-ranked pair first and, among equal ranks, the leftmost,
// which is what merges.txt's order means.
func (t *Tokenizer) bpe(dst []int, piece string) []int {
	var buf [shortPiece]int32
	syms := buf[:0]
	if len(piece) > shortPiece {
		syms = make([]int32, 0, len(piece))
	}
	for i := 0; i < len(piece); i++ {
		// A byte without a token (only in toy vocabularies) is dropped, as
		// Hugging Face's BPE without an unknown token does.
		if id := t.byteID[piece[i]]; id >= 0 {
			syms = append(syms, id)
		}
	}
	if len(syms) <= shortPiece {
		syms = t.mergeShort(syms)
	} else {
		syms = t.mergeLong(syms)
	}
	for _, s := range syms {
		dst = append(dst, int(s))
	}
	return dst
}

func (t *Tokenizer) mergeShort(syms []int32) []int32 {
	for len(syms) > 1 {
		best, bestRank := -1, int32(-1)
		var bestID int32
		for i := 0; i+1 < len(syms); i++ {
			if m, ok := t.merges[pairKey(syms[i], syms[i+1])]; ok && (best < 0 || m.rank < bestRank) {
				best, bestRank, bestID = i, m.rank, m.id
			}
		}
		if best < 0 {
			break
		}
		syms[best] = bestID
		syms = append(syms[:best+1], syms[best+2:]...)
	}
	return syms
}

// candidate is a pair waiting in the heap: the merge of the symbol at pos
// with its right neighbour, valid while both still hold left and right.
type candidate struct {
	rank, id    int32
	pos         int
	left, right int32
}

// candidates is a binary min-heap ordered by (rank, pos), written out
// rather than through container/heap to avoid boxing every push.
type candidates []candidate

func (h candidates) less(i, j int) bool {
	if h[i].rank != h[j].rank {
		return h[i].rank < h[j].rank
	}
	return h[i].pos < h[j].pos
}

func (h *candidates) push(c candidate) {
	*h = append(*h, c)
	q := *h
	for i := len(q) - 1; i > 0; {
		parent := (i - 1) / 2
		if !q.less(i, parent) {
			break
		}
		q[i], q[parent] = q[parent], q[i]
		i = parent
	}
}

func (h *candidates) pop() candidate {
	q := *h
	top := q[0]
	last := len(q) - 1
	q[0] = q[last]
	q = q[:last]
	for i := 0; ; {
		small, l, r := i, 2*i+1, 2*i+2
		if l < len(q) && q.less(l, small) {
			small = l
		}
		if r < len(q) && q.less(r, small) {
			small = r
		}
		if small == i {
			break
		}
		q[i], q[small] = q[small], q[i]
		i = small
	}
	*h = q
	return top
}

func (t *Tokenizer) mergeLong(id []int32) []int32 {
	n := len(id)
	prev := make([]int, n) // -1: none
	next := make([]int, n) // n: none
	alive := make([]bool, n)
	for i := 0; i < n; i++ {
		prev[i], next[i], alive[i] = i-1, i+1, true
	}
	h := make(candidates, 0, n)
	push := func(pos int) {
		if pos < 0 || next[pos] >= n {
			return
		}
		l, r := id[pos], id[next[pos]]
		if m, ok := t.merges[pairKey(l, r)]; ok {
			h.push(candidate{rank: m.rank, id: m.id, pos: pos, left: l, right: r})
		}
	}
	for i := 0; i < n-1; i++ {
		push(i)
	}
	for len(h) > 0 {
		c := h.pop()
		p := c.pos
		if !alive[p] || next[p] >= n || id[p] != c.left || id[next[p]] != c.right {
			continue // stale: one side was merged since this pair was queued
		}
		q := next[p]
		id[p] = c.id
		alive[q] = false
		next[p] = next[q]
		if next[q] < n {
			prev[next[q]] = p
		}
		push(prev[p])
		push(p)
	}
	out := id[:0]
	for i := 0; i < n; i = next[i] {
		out = append(out, id[i]) // i only grows, so this never overwrites unread ids
	}
	return out
}

// pieceCache remembers the ids of pieces already encoded. Text repeats its
// words, so most pieces are found here. It is safe for concurrent use and
// forgets everything when it grows past its limit.
type pieceCache struct {
	mu    sync.RWMutex
	ids   map[string][]int
	limit int
}

func newPieceCache(limit int) *pieceCache {
	return &pieceCache{ids: make(map[string][]int), limit: limit}
}

func (c *pieceCache) get(piece string) ([]int, bool) {
	c.mu.RLock()
	ids, ok := c.ids[piece]
	c.mu.RUnlock()
	return ids, ok
}

func (c *pieceCache) put(piece string, ids []int) {
	c.mu.Lock()
	if len(c.ids) >= c.limit {
		clear(c.ids)
	}
	c.ids[piece] = ids
	c.mu.Unlock()
}
