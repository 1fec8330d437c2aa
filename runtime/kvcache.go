package runtime

// The KV cache carried across Generate calls (the agent loop's turns) is
// kept here, in one place: RowCache holds one row's keys and values,
// compact (no padding), per agent and layer; carriedPast lays the rows out
// as a step's past inputs and keepCache gathers them back from a call's
// last presents. A device-resident cache replaces these three.

// RowCache holds the keys and values of the tokens one row has fed, for
// GenerateConfig.Cache. The zero value is an empty cache.
type RowCache struct {
	tokens []int64
	// kv[(agent·layers + layer)·2 + 0/1] is the key/value tensor
	// [kv_heads, len(tokens), head_dim] of the cache's dtype, as bytes.
	kv     [][]byte
	agents int
}

// Len returns the number of tokens the cache holds.
func (c *RowCache) Len() int {
	if c == nil {
		return 0
	}
	return len(c.tokens)
}

// Tokens returns the tokens the cache holds.
func (c *RowCache) Tokens() []int64 {
	if c == nil {
		return nil
	}
	return c.tokens
}

// Reset empties the cache.
func (c *RowCache) Reset() { *c = RowCache{} }

// carriedLengths returns, per row, how many leading prompt tokens its cache
// covers: the common prefix of the cache's tokens and the prompt, less the
// prompt's last token (whose logits the first step needs). Without a cache,
// a graph without one, without an attention mask and position ids (the
// hole between the carried and the new tokens must be masked), or with
// another number of agents, nothing is carried.
func (d *Decoder) carriedLengths(prompts [][]int64, cfg *GenerateConfig, useCache bool) []int {
	n := make([]int, len(prompts))
	if cfg.Cache == nil || !useCache || !d.dynamic[d.spec.AttentionMask] || !d.dynamic[d.spec.PositionIDs] {
		return n
	}
	for i, p := range prompts {
		c := cfg.Cache[i]
		if c == nil || c.agents != max(cfg.Agents, 1) {
			continue
		}
		k := 0
		for k < len(c.tokens) && k < len(p)-1 && c.tokens[k] == p[k] {
			k++
		}
		n[i] = k
	}
	return n
}

// carriedPast builds agent k's past inputs for C columns: row i's n[i]
// carried tokens right-aligned, zeros (masked) before them.
func (d *Decoder) carriedPast(caches []*RowCache, n []int, C, k int) map[string]*Tensor {
	B, H, D := int64(len(n)), d.spec.KVHeads, d.spec.HeadDim
	es := int64(d.cacheDType.Size())
	past := map[string]*Tensor{}
	for l, layer := range d.spec.Cache {
		for j, name := range []string{layer.PresentKey, layer.PresentValue} {
			t := NewTensor(d.cacheDType, B, H, int64(C), D)
			for i := range n {
				if n[i] == 0 {
					continue
				}
				src := caches[i].kv[(k*len(d.spec.Cache)+l)*2+j]
				have := int64(len(caches[i].tokens))
				for h := int64(0); h < H; h++ {
					dst := ((int64(i)*H+h)*int64(C) + int64(C-n[i])) * D * es
					copy(t.bytes[dst:dst+int64(n[i])*D*es], src[h*have*D*es:])
				}
			}
			past[name] = t
		}
	}
	return past
}

// keepCache stores agent k's keys and values of every token each row fed
// (the columns its mask marks) from the last step's presents into the
// rows' caches.
func (d *Decoder) keepCache(caches []*RowCache, rows []rowState, present map[string]*Tensor, k, agents int) {
	H, D := d.spec.KVHeads, d.spec.HeadDim
	es := int64(d.cacheDType.Size())
	L := len(d.spec.Cache)
	for i := range rows {
		c := caches[i]
		if c == nil {
			continue
		}
		r := &rows[i]
		T := present[d.spec.Cache[0].PresentKey].shape[2]
		var cols []int64 // every column the row fed: all have run
		for col, m := range r.mask {
			if m == 1 && int64(col) < T {
				cols = append(cols, int64(col))
			}
		}
		fed := int64(len(cols))
		if k == 0 {
			c.tokens = append(c.tokens[:0], r.seq[:fed]...)
			c.agents = agents
			if len(c.kv) != agents*L*2 {
				c.kv = make([][]byte, agents*L*2)
			}
		}
		for l, layer := range d.spec.Cache {
			for j, name := range []string{layer.PresentKey, layer.PresentValue} {
				src := present[name]
				size := H * fed * D * es
				dst := c.kv[(k*L+l)*2+j]
				if int64(cap(dst)) < size {
					dst = make([]byte, size)
				}
				dst = dst[:size]
				for h := int64(0); h < H; h++ {
					for q, col := range cols {
						from := ((int64(i)*H+h)*T + col) * D * es
						copy(dst[(h*fed+int64(q))*D*es:(h*fed+int64(q)+1)*D*es], src.bytes[from:from+D*es])
					}
				}
				c.kv[(k*L+l)*2+j] = dst
			}
		}
	}
}
