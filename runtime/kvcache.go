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

// residentPast is carriedPast on the device: agent k's past inputs for C
// columns, assembled from the rows' device caches by device copies.
func (d *Decoder) residentPast(caches []*RowCache, n []int, C, k int) (map[string]*DeviceTensor, error) {
	B, H, D := int64(len(n)), d.spec.KVHeads, d.spec.HeadDim
	es := int64(d.cacheDType.Size())
	past := map[string]*DeviceTensor{}
	for l, layer := range d.spec.Cache {
		for j, name := range []string{layer.PresentKey, layer.PresentValue} {
			t, err := d.dev.NewTensor(name, d.cacheDType, B, H, int64(C), D)
			if err != nil {
				freeAll(past)
				return nil, err
			}
			past[name] = t
			var chunks []int64
			for i := range n {
				if n[i] == 0 {
					continue
				}
				src := caches[i].dev[(k*len(d.spec.Cache)+l)*2+j]
				have := int64(len(caches[i].tokens))
				for h := int64(0); h < H; h++ {
					dst := ((int64(i)*H+h)*int64(C) + int64(C-n[i])) * D * es
					chunks = append(chunks, dst, h*have*D*es, int64(n[i])*D*es)
				}
				if err := t.copyChunks(src, chunks); err != nil {
					freeAll(past)
					return nil, err
				}
				chunks = chunks[:0]
			}
		}
	}
	return past, nil
}

// keepResident is keepCache on the device: agent k's keys and values of
// every token each row fed, gathered from the last presents into new device
// tensors of the rows' caches.
func (d *Decoder) keepResident(caches []*RowCache, rows []rowState, present map[string]*DeviceTensor, k, agents int) error {
	H, D := d.spec.KVHeads, d.spec.HeadDim
	es := int64(d.cacheDType.Size())
	L := len(d.spec.Cache)
	T := present[d.spec.Cache[0].PresentKey].shape[2]
	for i := range rows {
		c := caches[i]
		if c == nil {
			continue
		}
		r := &rows[i]
		// The columns the row fed, as runs [start, start+len) of
		// consecutive columns: each run is one copy per head.
		var runs [][2]int64
		fed := int64(0)
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
		if k == 0 {
			c.Reset()
			c.tokens = append(c.tokens[:0], r.seq[:fed]...)
			c.agents, c.device = agents, d.dev
			c.dev = make([]*DeviceTensor, agents*L*2)
		}
		var chunks []int64
		for l, layer := range d.spec.Cache {
			for j, name := range []string{layer.PresentKey, layer.PresentValue} {
				dst, err := d.dev.NewTensor(name, d.cacheDType, H, fed, D)
				if err != nil {
					return err
				}
				c.dev[(k*L+l)*2+j] = dst
				chunks = chunks[:0]
				for h := int64(0); h < H; h++ {
					q := int64(0)
					for _, run := range runs {
						chunks = append(chunks, (h*fed+q)*D*es, ((int64(i)*H+h)*T+run[0])*D*es, run[1]*D*es)
						q += run[1]
					}
				}
				if err := dst.copyChunks(present[name], chunks); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
