package qwen2ref

import (
	"fmt"
	"math"
	"strconv"

	"github.com/dartc/dartc/models/qwen2"
)

// Model is a Qwen2 decoder with its weights.
type Model struct {
	cfg qwen2.Config
	w   map[string][]float64
	// MaskValue is added to the scores of hidden key positions.
	MaskValue float64
	// Delta, when set, is added to the output of every target linear: it
	// gets the layer, the target, the batch row and the position within
	// this call's tokens, and the linear's input x (a per-token adapter
	// such as dartc's role-gated LoRA). nil: the plain model.
	Delta func(layer int, k qwen2.TargetKind, row, pos int, x []float64) []float64
}

// Cache holds one layer's keys (after rotary embedding) and values per entry
// of Key and Value, each flat [Batch, KVHeads, Len, HeadDim].
type Cache struct {
	Batch, Len int
	Key, Value [][]float64
}

// New checks that weights holds every tensor of cfg with the right size.
func New(cfg qwen2.Config, weights map[string][]float64) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	m := &Model{cfg: cfg, w: weights, MaskValue: -math.MaxFloat64}
	need := map[string]int{
		"model.embed_tokens.weight": cfg.Vocab * cfg.Hidden,
		"model.norm.weight":         cfg.Hidden,
	}
	if _, ok := weights["lm_head.weight"]; ok || !cfg.TiedEmbed {
		need["lm_head.weight"] = cfg.Vocab * cfg.Hidden
	}
	for l := 0; l < cfg.Layers; l++ {
		p := "model.layers." + strconv.Itoa(l) + "."
		need[p+"input_layernorm.weight"] = cfg.Hidden
		need[p+"post_attention_layernorm.weight"] = cfg.Hidden
		for _, k := range qwen2.TargetKinds() {
			out, in := cfg.LinearShape(k)
			need[qwen2.ModulePath(l, k)+".weight"] = out * in
			if cfg.HasBias(k) {
				need[qwen2.ModulePath(l, k)+".bias"] = out
			}
		}
	}
	for name, n := range need {
		v, ok := weights[name]
		if !ok {
			return nil, fmt.Errorf("qwen2ref: weight %s missing", name)
		}
		if len(v) != n {
			return nil, fmt.Errorf("qwen2ref: weight %s has %d values, want %d", name, len(v), n)
		}
	}
	return m, nil
}

func (m *Model) lmHead() []float64 {
	if w, ok := m.w["lm_head.weight"]; ok {
		return w
	}
	return m.w["model.embed_tokens.weight"]
}

// Forward runs the decoder over new tokens. past may be nil (no earlier
// tokens). It returns the logits [batch, seq, vocab] and the caches extended by
// the new positions.
func (m *Model) Forward(inputIDs, attentionMask, positionIDs [][]int64, past *Cache) ([]float64, *Cache, error) {
	c := m.cfg
	batch := len(inputIDs)
	if batch == 0 || len(attentionMask) != batch || len(positionIDs) != batch {
		return nil, nil, fmt.Errorf("qwen2ref: batch sizes differ or are zero: ids %d, mask %d, positions %d",
			len(inputIDs), len(attentionMask), len(positionIDs))
	}
	seq := len(inputIDs[0])
	pastLen := 0
	if past != nil {
		if past.Batch != batch || len(past.Key) != c.Layers || len(past.Value) != c.Layers {
			return nil, nil, fmt.Errorf("qwen2ref: cache is for batch %d with %d layers, want batch %d with %d",
				past.Batch, len(past.Key), batch, c.Layers)
		}
		pastLen = past.Len
	}
	total := pastLen + seq
	for b := 0; b < batch; b++ {
		if len(inputIDs[b]) != seq || len(positionIDs[b]) != seq || len(attentionMask[b]) != total {
			return nil, nil, fmt.Errorf("qwen2ref: row %d: want %d ids and positions and %d mask entries", b, seq, total)
		}
		for _, id := range inputIDs[b] {
			if id < 0 || id >= int64(c.Vocab) {
				return nil, nil, fmt.Errorf("qwen2ref: token id %d outside vocabulary of %d", id, c.Vocab)
			}
		}
	}

	hd, nkv := c.HeadDim, c.KVHeads
	present := &Cache{Batch: batch, Len: total, Key: make([][]float64, c.Layers), Value: make([][]float64, c.Layers)}

	// hidden[b][i] is the residual stream of token i of row b.
	hidden := make([][][]float64, batch)
	emb := m.w["model.embed_tokens.weight"]
	for b := range hidden {
		hidden[b] = make([][]float64, seq)
		for i := range hidden[b] {
			id := int(inputIDs[b][i])
			hidden[b][i] = append([]float64(nil), emb[id*c.Hidden:(id+1)*c.Hidden]...)
		}
	}

	for l := 0; l < c.Layers; l++ {
		p := "model.layers." + strconv.Itoa(l) + "."
		keys := make([]float64, batch*nkv*total*hd)
		values := make([]float64, batch*nkv*total*hd)
		at := func(b, h, t int) int { return ((b*nkv+h)*total + t) * hd }
		if past != nil {
			for b := 0; b < batch; b++ {
				for h := 0; h < nkv; h++ {
					for t := 0; t < pastLen; t++ {
						src := ((b*nkv+h)*pastLen + t) * hd
						copy(keys[at(b, h, t):at(b, h, t)+hd], past.Key[l][src:src+hd])
						copy(values[at(b, h, t):at(b, h, t)+hd], past.Value[l][src:src+hd])
					}
				}
			}
		}
		queries := make([][][]float64, batch) // [b][i][heads*hd], rotated
		for b := 0; b < batch; b++ {
			queries[b] = make([][]float64, seq)
			for i := 0; i < seq; i++ {
				x := rmsNorm(hidden[b][i], m.w[p+"input_layernorm.weight"], c.RMSEps)
				q := m.linear(l, qwen2.TargetQ, b, i, x)
				k := m.linear(l, qwen2.TargetK, b, i, x)
				v := m.linear(l, qwen2.TargetV, b, i, x)
				pos := float64(positionIDs[b][i])
				for h := 0; h < c.Heads; h++ {
					rotate(q[h*hd:(h+1)*hd], pos, c.RopeTheta)
				}
				for h := 0; h < nkv; h++ {
					rotate(k[h*hd:(h+1)*hd], pos, c.RopeTheta)
					copy(keys[at(b, h, pastLen+i):], k[h*hd:(h+1)*hd])
					copy(values[at(b, h, pastLen+i):at(b, h, pastLen+i)+hd], v[h*hd:(h+1)*hd])
				}
				queries[b][i] = q
			}
		}
		present.Key[l], present.Value[l] = keys, values

		group := c.Heads / nkv
		scale := 1 / math.Sqrt(float64(hd))
		for b := 0; b < batch; b++ {
			for i := 0; i < seq; i++ {
				attn := make([]float64, c.Heads*hd)
				scores := make([]float64, total)
				for h := 0; h < c.Heads; h++ {
					kvh := h / group
					q := queries[b][i][h*hd : (h+1)*hd]
					for t := 0; t < total; t++ {
						var dot float64
						for d := 0; d < hd; d++ {
							dot += q[d] * keys[at(b, kvh, t)+d]
						}
						scores[t] = dot * scale
						if t > pastLen+i || attentionMask[b][t] == 0 {
							scores[t] += m.MaskValue
						}
					}
					softmax(scores)
					for t := 0; t < total; t++ {
						for d := 0; d < hd; d++ {
							attn[h*hd+d] += scores[t] * values[at(b, kvh, t)+d]
						}
					}
				}
				o := m.linear(l, qwen2.TargetO, b, i, attn)
				for j := range o {
					hidden[b][i][j] += o[j]
				}
				x := rmsNorm(hidden[b][i], m.w[p+"post_attention_layernorm.weight"], c.RMSEps)
				gate := m.linear(l, qwen2.TargetGate, b, i, x)
				up := m.linear(l, qwen2.TargetUp, b, i, x)
				for j := range gate {
					gate[j] = gate[j] / (1 + math.Exp(-gate[j])) * up[j]
				}
				down := m.linear(l, qwen2.TargetDown, b, i, gate)
				for j := range down {
					hidden[b][i][j] += down[j]
				}
			}
		}
	}

	logits := make([]float64, batch*seq*c.Vocab)
	head := m.lmHead()
	for b := 0; b < batch; b++ {
		for i := 0; i < seq; i++ {
			x := rmsNorm(hidden[b][i], m.w["model.norm.weight"], c.RMSEps)
			row := logits[(b*seq+i)*c.Vocab : (b*seq+i+1)*c.Vocab]
			for v := range row {
				var s float64
				for j, xj := range x {
					s += head[v*c.Hidden+j] * xj
				}
				row[v] = s
			}
		}
	}
	return logits, present, nil
}

// linear computes W·x (+ b) with W stored [out, in], plus Delta's term for
// token pos of row.
func (m *Model) linear(layer int, k qwen2.TargetKind, row, pos int, x []float64) []float64 {
	name := qwen2.ModulePath(layer, k)
	out, in := m.cfg.LinearShape(k)
	w := m.w[name+".weight"]
	y := make([]float64, out)
	for o := 0; o < out; o++ {
		var s float64
		for j := 0; j < in; j++ {
			s += w[o*in+j] * x[j]
		}
		y[o] = s
	}
	if m.cfg.HasBias(k) {
		for o, b := range m.w[name+".bias"] {
			y[o] += b
		}
	}
	if m.Delta != nil {
		for o, d := range m.Delta(layer, k, row, pos, x) {
			y[o] += d
		}
	}
	return y
}

// rmsNorm returns γ ⊙ x / sqrt(mean(x²) + eps).
func rmsNorm(x, gamma []float64, eps float64) []float64 {
	var ss float64
	for _, v := range x {
		ss += v * v
	}
	r := 1 / math.Sqrt(ss/float64(len(x))+eps)
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = gamma[i] * (v * r)
	}
	return y
}

// rotate applies the rotary embedding of position pos to one head in place:
// the pair (x[j], x[j+d/2]) turns by pos·θ^(−2j/d).
func rotate(x []float64, pos, theta float64) {
	half := len(x) / 2
	for j := 0; j < half; j++ {
		angle := pos * math.Exp(-float64(2*j)/float64(len(x))*math.Log(theta))
		cos, sin := math.Cos(angle), math.Sin(angle)
		a, b := x[j], x[j+half]
		x[j] = a*cos - b*sin
		x[j+half] = b*cos + a*sin
	}
}

func softmax(s []float64) {
	mx := math.Inf(-1)
	for _, v := range s {
		mx = math.Max(mx, v)
	}
	var sum float64
	for i, v := range s {
		s[i] = math.Exp(v - mx)
		sum += s[i]
	}
	for i := range s {
		s[i] /= sum
	}
}
