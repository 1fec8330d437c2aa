package passes

import (
	"cmp"
	"slices"

	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/ir/onnxpb"
)

// SlicesToSplit replaces Slices that cut one value into consecutive pieces
// along one axis (rotary embeddings' rotate_half takes x[..., :d/2] and
// x[..., d/2:]) with one Split. The forward is the same copy; the backward
// differs: each Slice's gradient is a Pad of its piece back to the whole
// width and a Sum of the Pads, two full-size passes per piece, where the
// Split's gradient is one Concat of the pieces. Only Slices whose starts,
// ends and axes are constants, steps 1, on a dim of known size, that
// together cover the dim exactly are replaced.
func SlicesToSplit(s *State) error {
	g := s.Model.Graph
	if s.Model.OpsetVersion("") < 13 { // Split's sizes became an input in opset 13
		return nil
	}
	si := inferShapes(g)
	type piece struct {
		n                *ir.Node
		start, end, size int64
		axis             int
	}
	cuts := map[string][]piece{} // "value|axis" → its pieces
	var keys []string
	for _, n := range g.Nodes {
		if n.OpType != "Slice" || n.Domain != "" || len(n.Inputs) < 4 || len(n.Inputs) > 5 {
			continue
		}
		d, ok := si.dims[n.Inputs[0]]
		if !ok {
			continue
		}
		starts, ok1 := si.constInts(n.Inputs[1])
		ends, ok2 := si.constInts(n.Inputs[2])
		axes, ok3 := si.constInts(n.Inputs[3])
		if !ok1 || !ok2 || !ok3 || len(starts) != 1 || len(ends) != 1 || len(axes) != 1 {
			continue
		}
		if len(n.Inputs) == 5 && n.Inputs[4] != "" {
			if steps, ok := si.constInts(n.Inputs[4]); !ok || len(steps) != 1 || steps[0] != 1 {
				continue
			}
		}
		axis, ok := normAxis(axes[0], len(d))
		if !ok {
			continue
		}
		size, ok := isNum(d[axis])
		if !ok {
			continue
		}
		clamp := func(i int64) int64 {
			if i < 0 {
				i += size
			}
			return min(max(i, 0), size)
		}
		start, end := clamp(starts[0]), clamp(ends[0]) // an end of MaxInt64 clamps to size
		if start >= end {
			continue
		}
		key := n.Inputs[0] + "|" + num(int64(axis)) + "|" + num(size)
		if _, seen := cuts[key]; !seen {
			keys = append(keys, key)
		}
		cuts[key] = append(cuts[key], piece{n, start, end, size, axis})
	}
	drop := map[*ir.Node]bool{}
	b := s.Builder()
	for _, key := range keys {
		ps := cuts[key]
		if len(ps) < 2 || len(ps) > 16 { // the search below tries every chain
			continue
		}
		// A chain of pieces from 0 to the dim's end, each starting where
		// the last ended; pieces off the chain stay Slices.
		slices.SortFunc(ps, func(a, b piece) int { return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.end, b.end)) })
		var chainFrom func(at int64) []piece
		chainFrom = func(at int64) []piece {
			if at == ps[0].size {
				return []piece{}
			}
			for _, p := range ps {
				if p.start == at {
					if rest := chainFrom(p.end); rest != nil {
						return append([]piece{p}, rest...)
					}
				}
			}
			return nil
		}
		chain := chainFrom(0)
		if len(chain) < 2 {
			continue
		}
		first := chain[0].n
		sizes := make([]int64, len(chain))
		outs := make([]string, len(chain))
		for i, p := range chain {
			sizes[i], outs[i] = p.end-p.start, p.n.Outputs[0]
		}
		b.Add(&ir.Node{Name: nodeTag(first) + "/pieces", OpType: "Split",
			Inputs:  []string{first.Inputs[0], b.Ints(nodeTag(first)+"/pieces/sizes", sizes...)},
			Outputs: outs, Attrs: []*onnxpb.AttributeProto{ir.AttrInt("axis", int64(ps[0].axis))}})
		for _, p := range chain {
			drop[p.n] = true
		}
	}
	if len(drop) == 0 {
		return nil
	}
	g.Nodes = slices.DeleteFunc(g.Nodes, func(n *ir.Node) bool { return drop[n] })
	return ir.TopoSort(g)
}
