package runtime

// The KV cache carried across Generate calls (the agent loop's turns) is
// kept here, in one place: RowCache holds one row's keys and values,
// compact (no padding), per agent and layer; carriedPast lays the rows out
// as a step's past inputs and keepCache gathers them back from a call's
// last presents. A resident decoder keeps them on its device instead
// (residentPast, keepResident): the same layouts, made by copies between
// device tensors, so nothing crosses to Go.

// RowCache holds the keys and values of the tokens one row has fed, for
// GenerateConfig.Cache. The zero value is an empty cache.
type RowCache struct {
	tokens []int64
	// kv[(agent·layers + layer)·2 + 0/1] is the key/value tensor
	// [kv_heads, len(tokens), head_dim] of the cache's dtype, as bytes.
	kv [][]byte
	// dev holds the same tensors on a resident decoder's device (kv is
	// then empty), each [kv_heads, len(tokens), head_dim].
	dev    []*DeviceTensor
	device *Device
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

// Reset empties the cache, freeing its device tensors.
func (c *RowCache) Reset() {
	for _, t := range c.dev {
		t.Destroy()
	}
	*c = RowCache{}
}

// carriedLengths returns, per row, how many leading prompt tokens its cache
// covers: the common prefix of the cache's tokens and the prompt, less the
// prompt's last token (whose logits the first step needs). Without a cache,
// a graph without one, without an attention mask and position ids (the
// hole between the carried and the new tokens must be masked), or with
// another number of agents, or a cache kept by a decoder on another device
// (or in Go memory for a resident decoder, and the other way round),
// nothing is carried.
func (d *Decoder) carriedLengths(prompts [][]int64, cfg *GenerateConfig, useCache bool) []int {
	n := make([]int, len(prompts))
	if cfg.Cache == nil || !useCache || !d.dynamic[d.spec.AttentionMask] || !d.dynamic[d.spec.PositionIDs] {
		return n
	}
	for i, p := range prompts {
		c := cfg.Cache[i]
		if c == nil || c.agents != max(cfg.Agents, 1) || c.device != d.dev {
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
	past := map[string]*Tensor{}
	var chunks []int64
	for l, layer := range d.spec.Cache {
		for j, name := range []string{layer.PresentKey, layer.PresentValue} {
			t := NewTensor(d.cacheDType, B, H, int64(C), D)
			for i := range n {
				if n[i] == 0 {
					continue
				}
				chunks = d.carryChunks(chunks[:0], i, n[i], len(caches[i].tokens), C)
				copyHostChunks(t.bytes, caches[i].kv[(k*len(d.spec.Cache)+l)*2+j], chunks)
			}
			past[name] = t
		}
	}
	return past
}

// carryChunks appends the copies, as (destination, source, length) byte
// triples, that lay the first n of the have tokens of row i's cache tensor
// [kv_heads, have, head_dim] right-aligned into its row of a past
// [batch, kv_heads, C, head_dim].
func (d *Decoder) carryChunks(chunks []int64, i, n, have, C int) []int64 {
	H, row := d.spec.KVHeads, d.spec.HeadDim*int64(d.cacheDType.Size())
	for h := int64(0); h < H; h++ {
		chunks = append(chunks, ((int64(i)*H+h)*int64(C)+int64(C-n))*row, h*int64(have)*row, int64(n)*row)
	}
	return chunks
}

// fedRuns returns the columns below T that row r fed (its mask's ones) as
// runs {start, length} of consecutive columns, and how many there are.
func fedRuns(r *rowState, T int64) (runs [][2]int64, fed int64) {
	for col, m := range r.mask {
		if m != 1 || int64(col) >= T {
			continue
		}
		if n := len(runs); n > 0 && runs[n-1][0]+runs[n-1][1] == int64(col) {
			runs[n-1][1]++
		} else {
			runs = append(runs, [2]int64{int64(col), 1})
		}
		fed++
	}
	return runs, fed
}

// keepChunks appends the copies, as (destination, source, length) byte
// triples, that gather row i's fed columns (runs, fed in all) of a present
// [batch, kv_heads, T, head_dim] into a cache tensor [kv_heads, fed,
// head_dim]: one copy per run and head.
func (d *Decoder) keepChunks(chunks []int64, i int, runs [][2]int64, fed, T int64) []int64 {
	H, row := d.spec.KVHeads, d.spec.HeadDim*int64(d.cacheDType.Size())
	for h := int64(0); h < H; h++ {
		q := int64(0)
		for _, run := range runs {
			chunks = append(chunks, (h*fed+q)*row, ((int64(i)*H+h)*T+run[0])*row, run[1]*row)
			q += run[1]
		}
	}
	return chunks
}

// copyHostChunks makes the copies of carryChunks or keepChunks in Go
// memory (DeviceTensor.copyChunks makes them on a device).
func copyHostChunks(dst, src []byte, chunks []int64) {
	for c := 0; c+2 < len(chunks); c += 3 {
		copy(dst[chunks[c]:chunks[c]+chunks[c+2]], src[chunks[c+1]:chunks[c+1]+chunks[c+2]])
	}
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
		runs, fed := fedRuns(r, T) // every column the row fed: all have run
		chunks := d.keepChunks(nil, i, runs, fed, T)
		if k == 0 {
			if c.device != nil { // kept on a device before: start over in Go memory
				c.Reset()
			}
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
				copyHostChunks(dst, src.bytes, chunks)
				c.kv[(k*L+l)*2+j] = dst
			}
		}
	}
}

// residentPast is carriedPast on the device: agent k's past inputs for C
// columns, assembled from the rows' device caches by device copies.
func (d *Decoder) residentPast(caches []*RowCache, n []int, C, k int) (map[string]*DeviceTensor, error) {
	B, H, D := int64(len(n)), d.spec.KVHeads, d.spec.HeadDim
	past := map[string]*DeviceTensor{}
	var chunks []int64
	for l, layer := range d.spec.Cache {
		for j, name := range []string{layer.PresentKey, layer.PresentValue} {
			t, err := d.dev.NewTensor(name, d.cacheDType, B, H, int64(C), D)
			if err != nil {
				freeAll(past)
				return nil, err
			}
			past[name] = t
			for i := range n {
				if n[i] == 0 {
					continue
				}
				chunks = d.carryChunks(chunks[:0], i, n[i], len(caches[i].tokens), C)
				if err := t.copyChunks(caches[i].dev[(k*len(d.spec.Cache)+l)*2+j], chunks); err != nil {
					freeAll(past)
					return nil, err
				}
			}
		}
	}
	return past, nil
}

// keepResident is keepCache on the device: agent k's keys and values of
// every token each row fed, gathered from the last presents into new device
// tensors of the rows' caches. On error every row's cache is emptied: one
// kept in part would claim tokens it holds no tensors for, and the next
// call would carry them; empty, the rows are prefilled again.
func (d *Decoder) keepResident(caches []*RowCache, rows []rowState, present map[string]*DeviceTensor, k, agents int) (err error) {
	defer func() {
		if err != nil {
			for _, c := range caches {
				if c != nil {
					c.Reset()
				}
			}
		}
	}()
	H, D := d.spec.KVHeads, d.spec.HeadDim
	L := len(d.spec.Cache)
	T := present[d.spec.Cache[0].PresentKey].shape[2]
	for i := range rows {
		c := caches[i]
		if c == nil {
			continue
		}
		r := &rows[i]
		runs, fed := fedRuns(r, T)
		chunks := d.keepChunks(nil, i, runs, fed, T)
		if k == 0 {
			c.Reset()
			c.tokens = append(c.tokens[:0], r.seq[:fed]...)
			c.agents, c.device = agents, d.dev
			c.dev = make([]*DeviceTensor, agents*L*2)
		}
		for l, layer := range d.spec.Cache {
			for j, name := range []string{layer.PresentKey, layer.PresentValue} {
				dst, err := d.dev.NewTensor(name, d.cacheDType, H, fed, D)
				if err != nil {
					return err
				}
				c.dev[(k*L+l)*2+j] = dst
				if err := dst.copyChunks(present[name], chunks); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
