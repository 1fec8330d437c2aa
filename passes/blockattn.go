package passes

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/ir/onnxpb"
)

// DefaultAttentionBlocks is the number of query blocks BlockCausalAttention
// cuts each attention into: the score square shrinks to (n+1)/2n of its
// area (7/12 at 6), for about 12 more nodes per block and layer in the
// forward and 33 with the backward. On the ~100M shape at batch 4, 6
// blocks step 0.97× the time of 3 at 512 tokens, the same at 256, and 8
// no better than 6 (README, Figures).
const DefaultAttentionBlocks = 6

// MaxAttentionBlocks bounds Options.AttentionBlocks: each block is a few
// dozen nodes per layer, forward and backward.
const MaxAttentionBlocks = 64

// BlockCausalAttention splits the queries of every causal self-attention
// (MatMul(q, kᵀ) → optional scale → Add(mask) → Softmax → MatMul(·, v),
// the form both exporters emit) into n = Options.AttentionBlocks blocks of
// about S/n positions, and lets block i multiply, mask and normalize only the keys
// [0, end_i) its last query may see. Under a causal mask every key after
// end_i has weight exp(mask) = 0 for every query of the block, so each row
// that sees at least one key gets the result of the full square; the matmuls,
// the mask add, the softmax and their gradients do (n+1)/2n of the work.
// Rows the mask hides entirely (left padding) are uniform over fewer keys
// than before: no loss reads them.
//
// It relies on the mask being causal (or narrower: padding, packed
// sequences, a sliding window), as it is in the decoder-only models dartc
// compiles; it runs on the whole-sequence graphs after drop-cache, where
// queries and keys have the same length. Attentions of any other form are
// left as they are.
func BlockCausalAttention(s *State) error {
	blocks := s.Opts.attentionBlocks()
	if blocks == 1 {
		return nil
	}
	g := s.Model.Graph
	si := inferShapes(g)
	prod, cons := producers(g), consumers(g)
	b := s.Builder()
	bounds := map[string]*blockCut{} // by the query length's shape token
	masks := map[string][]string{}   // a mask → its blocks' parts
	views := map[string]*groupViews{}
	drop := map[*ir.Node]bool{}
	for _, n := range append([]*ir.Node(nil), g.Nodes...) {
		a, ok := matchAttention(g, si, prod, cons, n)
		if !ok {
			continue
		}
		cut, ok := bounds[a.seq]
		if !ok {
			cut = blockBounds(b, a.q, blocks)
			bounds[a.seq] = cut
		}
		parts := a.maskBlocks(b, cut, masks, blocks)
		gq, ok := matchGroups(g, si, prod, a)
		var gv *groupViews
		if ok && !s.Opts.RepeatedKV {
			gv = groupedViews(b, views, a, gq, cut, parts)
		}
		a.rewrite(b, cut, parts, gq, gv)
		for _, x := range a.nodes {
			drop[x] = true
		}
	}
	if len(drop) == 0 {
		return nil
	}
	g.Nodes = slices.DeleteFunc(g.Nodes, func(n *ir.Node) bool { return drop[n] })
	return ir.TopoSort(g)
}

// blockCut is where the query blocks of one sequence length end.
type blockCut struct {
	shape  string   // the queries' shape
	seq    string   // S, one-element int64
	ends   []string // end_i of the blocks i < n−1, one-element int64
	lens   []string // the blocks' lengths, one-element int64 each
	sizes  string   // the blocks' lengths, Split sizes for the queries
	prefix []string // [end_i, S − end_i], Split sizes that cut the keys [0, end_i) off
}

// blockBounds computes the block ends from q's length S (axis 2):
// end_i = ⌊(i+1)·S/n⌋, blocks whose lengths differ by at most one, none
// empty, when S ≥ n; when S < n every end is 0 and the last block is the
// whole square. (A block without queries but with keys would make ORT
// multiply over an empty inner dimension, which leaves its output
// unwritten instead of zero.)
func blockBounds(b *ir.Builder, q string, blocks int) *blockCut {
	p := "/attention_blocks"
	shape := b.Op(p+"/shape", "Shape", []string{q})
	seq := b.Op(p+"/seq", "Gather", []string{shape, b.Ints(p+"/seq/axis", 2)})
	n := int64(blocks)
	nc := b.Ints(p+"/n", n)
	long := b.Op(p+"/long", "Min", []string{b.Op(p+"/long/Div", "Div", []string{seq, nc}), b.Ints(p+"/one", 1)}) // S ≥ n: 1, else 0
	c := &blockCut{shape: shape, seq: seq}
	lens := make([]string, 0, n)
	prev := ""
	for i := int64(1); i <= n; i++ {
		at := fmt.Sprintf("%s/end%d", p, i)
		end := seq
		if i < n {
			end = b.Op(at, "Mul", []string{b.Op(at+"/Div", "Div", []string{b.Op(at+"/Mul", "Mul", []string{seq, b.Ints(at+"/i", i)}), nc}), long})
			c.ends = append(c.ends, end)
			rest := b.Op(at+"/rest", "Sub", []string{seq, end})
			c.prefix = append(c.prefix, b.Op(at+"/prefix", "Concat", []string{end, rest}, ir.AttrInt("axis", 0)))
		}
		if prev == "" {
			lens = append(lens, end)
		} else {
			lens = append(lens, b.Op(at+"/len", "Sub", []string{end, prev}))
		}
		prev = end
	}
	c.lens = lens
	c.sizes = b.Op(p+"/sizes", "Concat", lens, ir.AttrInt("axis", 0))
	return c
}

// attention is one matched MatMul → scale → mask → Softmax → MatMul chain.
type attention struct {
	q, kT, v, mask string
	seq            string     // the query (and key) length's shape token
	maskRows       bool       // the mask has a query axis to slice (not a broadcast 1)
	maskCols       bool       // … and a key axis
	maskFirst      bool       // the mask is the Add's first operand
	scale          *ir.Node   // Mul or Div by a constant, or nil
	casts          []*ir.Node // Casts to float32 between the Softmax and the MatMul
	nodes          []*ir.Node // the chain, replaced
	out            string     // the attention's output, kept
	tag            string     // where the blocks' nodes are named: the chain's scope
}

func matchAttention(g *ir.Graph, si *shapeInfo, prod map[string]*ir.Node, cons map[string][]*ir.Node, sm *ir.Node) (*attention, bool) {
	if sm.OpType != "Softmax" || sm.Domain != "" || len(sm.Inputs) != 1 {
		return nil, false
	}
	only := func(v string) (*ir.Node, bool) { // v's single consumer
		c := cons[v]
		if len(c) != 1 || g.Output(v) != nil {
			return nil, false
		}
		return c[0], true
	}
	a := &attention{}
	// Forward from the Softmax: an optional Cast, then MatMul(probs, v).
	next, ok := only(sm.Outputs[0])
	if !ok {
		return nil, false
	}
	probs := sm.Outputs[0]
	for next.OpType == "Cast" && next.AttrInt("to", 0) == int64(ir.Float32) && len(a.casts) < 4 {
		a.casts, probs = append(a.casts, next), next.Outputs[0]
		if next, ok = only(probs); !ok {
			return nil, false
		}
	}
	pv := next
	if pv.OpType != "MatMul" || pv.Domain != "" || pv.Inputs[0] != probs {
		return nil, false
	}
	// Back from the Softmax: Add(scores, mask), scores = [scale](MatMul(q, kT)).
	add := prod[sm.Inputs[0]]
	if add == nil || add.OpType != "Add" || len(cons[add.Outputs[0]]) != 1 {
		return nil, false
	}
	var qk *ir.Node
	for i := 0; i < 2 && qk == nil; i++ {
		p := prod[add.Inputs[i]]
		if p == nil || len(cons[p.Outputs[0]]) != 1 {
			continue
		}
		var scale *ir.Node
		if (p.OpType == "Mul" || p.OpType == "Div") && isScalar(g, prod, p.Inputs[1]) {
			scale, p = p, prod[p.Inputs[0]]
			if p == nil || len(cons[p.Outputs[0]]) != 1 {
				continue
			}
		}
		if p.OpType == "MatMul" && p.Domain == "" {
			qk, a.scale, a.mask, a.maskFirst = p, scale, add.Inputs[1-i], i == 1
		}
	}
	if qk == nil {
		return nil, false
	}
	a.q, a.kT, a.v, a.out = qk.Inputs[0], qk.Inputs[1], pv.Inputs[1], pv.Outputs[0]
	// Shapes: [b, h, S, d] · [b, h, d, S] with a mask [.., S|1, S|1].
	dq, dk, dv, dm := si.dims[a.q], si.dims[a.kT], si.dims[a.v], si.dims[a.mask]
	if len(dq) != 4 || len(dk) != 4 || len(dv) != 4 || len(dm) < 2 {
		return nil, false
	}
	a.seq = dq[2]
	if dk[3] != a.seq || dv[2] != a.seq || a.seq == "1" {
		return nil, false
	}
	rows, cols := dm[len(dm)-2], dm[len(dm)-1]
	if (rows != a.seq && rows != "1") || (cols != a.seq && cols != "1") {
		return nil, false
	}
	a.maskRows, a.maskCols = rows == a.seq, cols == a.seq
	a.nodes = []*ir.Node{qk, add, sm, pv}
	if a.scale != nil {
		a.nodes = append(a.nodes, a.scale)
	}
	a.nodes = append(a.nodes, a.casts...)
	a.tag = nodeTag(qk)
	if i := strings.LastIndexByte(a.tag, '/'); i > 0 {
		a.tag = a.tag[:i]
	}
	a.tag += "/blocks"
	return a, true
}

// isScalar reports whether v is a one-element constant.
func isScalar(g *ir.Graph, prod map[string]*ir.Node, v string) bool {
	if t := g.Initializer(v); t != nil {
		return t.NumElements() == 1
	}
	if p := prod[v]; p != nil && p.OpType == "Constant" {
		if t := p.Attr("value"); t != nil && t.GetT() != nil {
			n := int64(1)
			for _, d := range t.GetT().Dims {
				n *= d
			}
			return n == 1
		}
	}
	return false
}

// maskBlocks cuts a mask into the blocks' parts: rows [start_i, end_i)
// and, before the last block, columns [0, end_i). Layers share their mask,
// so each mask is cut once. Splits, not Slices, so that the shape inference
// sees the parts' sizes are the queries' and keys' (the same size values).
func (a *attention) maskBlocks(b *ir.Builder, c *blockCut, cache map[string][]string, n int) []string {
	if parts, ok := cache[a.mask]; ok {
		return parts
	}
	p := a.tag + "/mask"
	parts := make([]string, n)
	if a.maskRows {
		copy(parts, b.OpN(p+"/rows", "Split", []string{a.mask, c.sizes}, n, ir.AttrInt("axis", -2)))
	} else {
		for i := range parts {
			parts[i] = a.mask
		}
	}
	if a.maskCols {
		for i := range n - 1 {
			parts[i] = b.OpN(fmt.Sprintf("%s/%d/keys", p, i), "Split", []string{parts[i], c.prefix[i]}, 2, ir.AttrInt("axis", -1))[0]
		}
	}
	cache[a.mask] = parts
	return parts
}

// groupedQuery is an attention whose keys and values are repeated for
// grouped-query attention (Reshape(Expand(Unsqueeze(x, 2))), the form both
// exporters give transformers' repeat_kv): kv heads of keys k and values v
// [b, kv, S, d], each read by group query heads. The blocks then multiply
// the queries of a kv head's group as one matrix, [b, kv, group·rows, d],
// against that head's keys as they are: no repeated copy of the keys and
// values, and their gradient is summed over the group by the matmul
// itself instead of by a reduction over a [b, kv, group, S, d] copy.
type groupedQuery struct {
	k, v           string // [b, kv, S, d]
	kv, group, dim int64
	mask5          bool // the mask is [·, 1, rows, keys]: unsqueezed to 5 dims
}

// matchGroups recognizes the repeated keys and values of a.
func matchGroups(g *ir.Graph, si *shapeInfo, prod map[string]*ir.Node, a *attention) (*groupedQuery, bool) {
	kT := prod[a.kT]
	if kT == nil || kT.OpType != "Transpose" || !slices.Equal(kT.Attr("perm").GetInts(), []int64{0, 1, 3, 2}) {
		return nil, false
	}
	k, kg, ok := repeatedKV(g, si, prod, kT.Inputs[0])
	if !ok {
		return nil, false
	}
	v, vg, ok := repeatedKV(g, si, prod, a.v)
	if !ok || vg != kg {
		return nil, false
	}
	dk, dv, dq := si.dims[k], si.dims[v], si.dims[a.q]
	kv, ok := isNum(dk[1])
	if !ok || dv[1] != dk[1] || dq[1] != num(kv*kg) || dk[2] != dv[2] || dk[3] != dv[3] || dk[3] != dq[3] {
		return nil, false
	}
	dim, ok := isNum(dk[3])
	if !ok {
		return nil, false
	}
	gq := &groupedQuery{k: k, v: v, kv: kv, group: kg, dim: dim}
	switch dm := si.dims[a.mask]; {
	case len(dm) == 4 && dm[1] == "1":
		gq.mask5 = true
	case len(dm) == 2, len(dm) == 3 && dm[0] == "1":
	default: // a per-head mask: it would not broadcast over the groups
		return nil, false
	}
	return gq, true
}

// repeatedKV undoes Reshape(Expand(Unsqueeze(x, 2), [·, ·, group, ·, ·]),
// [b, kv·group, S, d]): x [b, kv, S, d] and group > 1.
func repeatedKV(g *ir.Graph, si *shapeInfo, prod map[string]*ir.Node, v string) (string, int64, bool) {
	r := prod[v]
	if r == nil || r.OpType != "Reshape" || r.Domain != "" {
		return "", 0, false
	}
	e := prod[r.Inputs[0]]
	if e == nil || e.OpType != "Expand" || e.Domain != "" {
		return "", 0, false
	}
	u := prod[e.Inputs[0]]
	if u == nil || u.OpType != "Unsqueeze" || u.Domain != "" {
		return "", 0, false
	}
	if axes, ok := si.axes(u); !ok || !slices.Equal(axes, []int64{2}) {
		return "", 0, false
	}
	x, de, dr := u.Inputs[0], si.dims[e.Outputs[0]], si.dims[v]
	dx := si.dims[x]
	if len(dx) != 4 || len(de) != 5 || len(dr) != 4 {
		return "", 0, false
	}
	group, ok := isNum(de[2])
	if !ok || group < 2 || de[0] != dx[0] || de[1] != dx[1] || de[3] != dx[2] || de[4] != dx[3] ||
		dr[0] != dx[0] || dr[2] != dx[2] || dr[3] != dx[3] {
		return "", 0, false
	}
	if kv, ok := isNum(dx[1]); !ok || dr[1] != num(kv*group) {
		return "", 0, false
	}
	return x, group, true
}

// groupViews are the shapes one group size's blocks are viewed through,
// shared by every layer, all explicit (allowzero: blocks may be empty when
// S < n): queries [b, heads, rows, d] as [b, kv, group·rows, d], scores as
// [b, kv, group, rows, keys] (to meet the mask) and back, and the output
// [b, kv, group·rows, d] as [b, heads, rows, d]; the masks unsqueezed.
type groupViews struct {
	queries, five, four, heads []string // per block: Reshape targets
	masks                      []string // per block: the mask part, [·, 1, 1, rows, keys] where unsqueezed
}

func groupedViews(b *ir.Builder, cache map[string]*groupViews, a *attention, gq *groupedQuery, c *blockCut, masks []string) *groupViews {
	key := fmt.Sprintf("%s|%d|%d|%d|%s|%t", a.seq, gq.kv, gq.group, gq.dim, a.mask, gq.mask5)
	if v, ok := cache[key]; ok {
		return v
	}
	p := fmt.Sprintf("/attention_blocks/kv%d_group%d_dim%d", gq.kv, gq.group, gq.dim)
	n := len(masks)
	v := &groupViews{queries: make([]string, n), five: make([]string, n), four: make([]string, n), heads: make([]string, n), masks: make([]string, n)}
	batch := b.Op(p+"/batch", "Gather", []string{c.shape, b.Ints(p+"/batch/axis", 0)})
	kv, group, heads, dim := b.Ints(p+"/kv", gq.kv), b.Ints(p+"/group", gq.group), b.Ints(p+"/heads", gq.kv*gq.group), b.Ints(p+"/dim", gq.dim)
	cat := func(name string, parts ...string) string {
		return b.Op(name, "Concat", parts, ir.AttrInt("axis", 0))
	}
	for i := range n {
		keys := c.seq // the last block sees every key
		if i < n-1 {
			keys = c.ends[i]
		}
		at := fmt.Sprintf("%s/%d", p, i)
		rows := c.lens[i]
		grouped := b.Op(at+"/grouped", "Mul", []string{rows, group})
		v.queries[i] = cat(at+"/queries", batch, kv, grouped, dim)
		v.five[i] = cat(at+"/five", batch, kv, group, rows, keys)
		v.four[i] = cat(at+"/four", batch, kv, grouped, keys)
		v.heads[i] = cat(at+"/heads", batch, heads, rows, dim)
		v.masks[i] = masks[i]
		if gq.mask5 {
			v.masks[i] = b.Op(at+"/mask", "Unsqueeze", []string{masks[i], b.Ints(at+"/mask/axes", 2)})
		}
	}
	cache[key] = v
	return v
}

// rewrite emits the blocked attention: over the exporter's repeated keys
// and values, or, with gv, over gq's kv heads' own keys and values, the
// queries, scores and outputs viewed through gv's shapes.
func (a *attention) rewrite(b *ir.Builder, c *blockCut, masks []string, gq *groupedQuery, gv *groupViews) {
	p, n := a.tag, len(masks)
	kT, v := a.kT, a.v
	if gv != nil {
		kT, v = b.Op(p+"/kT", "Transpose", []string{gq.k}, ir.AttrInts("perm", 0, 1, 3, 2)), gq.v
		masks = gv.masks
	} else {
		gv = &groupViews{} // no views
	}
	qs := b.OpN(p+"/q/Split", "Split", []string{a.q, c.sizes}, n, ir.AttrInt("axis", 2))
	ys := make([]string, n)
	for i := range n {
		bp := fmt.Sprintf("%s/%d", p, i)
		// A group's heads are consecutive: these Reshapes are views.
		view := func(name, x string, shapes []string) string {
			if shapes == nil {
				return x
			}
			return b.Op(name, "Reshape", []string{x, shapes[i]}, ir.AttrInt("allowzero", 1))
		}
		k, vi := kT, v
		if i < n-1 {
			// The keys [0, end_i): the first part of a two-way Split, whose
			// gradient is one Pad by the Split's second size.
			k = b.OpN(bp+"/kT/Split", "Split", []string{kT, c.prefix[i]}, 2, ir.AttrInt("axis", 3))[0]
			vi = b.OpN(bp+"/v/Split", "Split", []string{v, c.prefix[i]}, 2, ir.AttrInt("axis", 2))[0]
		}
		sc := b.Op(bp+"/QK", "MatMul", []string{view(bp+"/q/groups", qs[i], gv.queries), k})
		if a.scale != nil {
			sc = b.Op(bp+"/scale", a.scale.OpType, []string{sc, a.scale.Inputs[1]})
		}
		sc = view(bp+"/scores/five", sc, gv.five)
		in := []string{sc, masks[i]}
		if a.maskFirst {
			in = []string{masks[i], sc}
		}
		pr := b.Op(bp+"/Softmax", "Softmax", []string{b.Op(bp+"/mask/Add", "Add", in)}, ir.AttrInt("axis", -1))
		for _, c := range a.casts {
			pr = b.Op(bp+"/Cast", "Cast", []string{pr}, c.Attrs...)
		}
		y := b.Op(bp+"/PV", "MatMul", []string{view(bp+"/probs/four", pr, gv.four), vi})
		ys[i] = view(bp+"/heads", y, gv.heads)
	}
	b.Add(&ir.Node{Name: p + "/Concat", OpType: "Concat", Inputs: ys, Outputs: []string{a.out},
		Attrs: []*onnxpb.AttributeProto{ir.AttrInt("axis", 2)}})
}
