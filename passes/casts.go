package passes

import "github.com/dartc/dartc/ir"

// DropNoopCasts removes the Casts to the type their input already has
// (the exporters' .float() and .to(dtype) on float32 values: a dozen per
// layer in a float32 Qwen2 export, each a copy at run time and a node, with
// its gradient, for ORT to optimize away at session creation). A Cast's
// readers read its input instead. Casts whose input type is not known for
// certain, that make a graph output or that a sub-graph reads stay.
func DropNoopCasts(s *State) error {
	g := s.Model.Graph
	dt := inferDTypes(g)
	inner := map[string]bool{} // values read inside If/Loop bodies
	for _, n := range g.Nodes {
		markSubgraphReads(n, inner)
	}
	same := map[string]string{} // a dropped Cast's output → its input
	kept := g.Nodes[:0]
	for _, n := range g.Nodes {
		for i, in := range n.Inputs {
			if x, ok := same[in]; ok {
				n.Inputs[i] = x
			}
		}
		if n.OpType == "Cast" && n.Domain == "" && len(n.Inputs) == 1 && len(n.Outputs) == 1 {
			out := n.Outputs[0]
			if t, ok := dt[n.Inputs[0]]; ok && t == ir.DType(n.AttrInt("to", 0)) && g.Output(out) == nil && !inner[out] {
				same[out] = n.Inputs[0]
				continue
			}
		}
		kept = append(kept, n)
	}
	g.Nodes = kept
	return nil
}
