package passes

import "github.com/dartc/dartc/ir"

// DeadCode removes nodes whose outputs nobody reads and initializers no
// node reads. Graph inputs stay: they are the graph's calling convention.
func DeadCode(s *State) error {
	g := s.Model.Graph
	live := make(map[string]bool, len(g.Nodes))
	for _, o := range g.Outputs {
		live[o.Name] = true
	}
	keep := make([]bool, len(g.Nodes))
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		n := g.Nodes[i]
		used := false
		for _, o := range n.Outputs {
			if live[o] {
				used = true
				break
			}
		}
		if !used {
			continue
		}
		keep[i] = true
		for _, in := range n.Inputs {
			live[in] = true
		}
		markSubgraphReads(n, live)
	}
	nodes := g.Nodes[:0]
	for i, n := range g.Nodes {
		if keep[i] {
			nodes = append(nodes, n)
		}
	}
	g.Nodes = nodes
	inits := g.Initializers[:0]
	for _, t := range g.Initializers {
		if live[t.Name] {
			inits = append(inits, t)
		}
	}
	g.Initializers = inits
	return nil
}

// markSubgraphReads marks outer-scope values read inside If/Loop/Scan
// bodies, and the sub-graphs nested in them, as live.
func markSubgraphReads(n *ir.Node, live map[string]bool) {
	for _, in := range ir.ImplicitInputs(n) {
		live[in] = true
	}
}
