package ir

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/dartc/dartc/ir/onnxpb"
)

// ErrInvalid wraps every invariant violation Check reports.
var ErrInvalid = errors.New("ir: invalid graph")

// Check verifies the graph invariants listed in the package doc and returns
// every violation found (up to a limit), joined.
func Check(g *Graph) error {
	var errs []string
	add := func(format string, args ...any) {
		if len(errs) < 20 {
			errs = append(errs, fmt.Sprintf(format, args...))
		}
	}
	defined := make(map[string]string, len(g.Nodes)*2)
	for _, v := range g.Inputs {
		if v.Name == "" {
			add("a graph input has no name")
			continue
		}
		if _, dup := defined[v.Name]; dup {
			add("graph input %q is declared twice", v.Name)
		}
		defined[v.Name] = "graph input"
		if v.Type == nil || v.Type.DType == Undefined || !v.Type.Shape {
			add("graph input %q has no tensor type with an element type and a rank", v.Name)
		}
	}
	for _, t := range g.Initializers {
		if t.Name == "" {
			add("an initializer has no name")
			continue
		}
		if prev, dup := defined[t.Name]; dup && prev != "graph input" {
			add("initializer %q is defined twice", t.Name)
		}
		defined[t.Name] = "initializer"
	}
	names := make(map[string]bool, len(g.Nodes))
	for i, n := range g.Nodes {
		if n.OpType == "" {
			add("node %d (%q) has no op_type", i, n.Name)
		}
		if n.Name != "" {
			if names[n.Name] {
				add("node name %q is used twice", n.Name)
			}
			names[n.Name] = true
		}
		for _, in := range n.Inputs {
			if in == "" {
				continue
			}
			if _, ok := defined[in]; !ok {
				add("%s reads %q, which is not a graph input, an initializer or the output of an earlier node", n, in)
			}
		}
		for _, out := range n.Outputs {
			if out == "" {
				continue
			}
			if prev, dup := defined[out]; dup {
				add("%s writes %q, already defined by %s (names must be SSA)", n, out, prev)
			}
			defined[out] = n.String()
		}
	}
	for _, v := range g.Outputs {
		if _, ok := defined[v.Name]; !ok {
			add("graph output %q is never defined", v.Name)
		}
		if v.Type == nil || v.Type.DType == Undefined || !v.Type.Shape {
			add("graph output %q has no tensor type with an element type and a rank", v.Name)
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalid, strings.Join(errs, "; "))
}

// CheckModel checks the main graph and the model-level invariants: a
// default-domain opset import and an IR version that can carry it.
func CheckModel(m *Model) error {
	if m.Graph == nil {
		return fmt.Errorf("%w: model has no graph", ErrInvalid)
	}
	op := m.OpsetVersion("")
	if op == 0 {
		return fmt.Errorf("%w: model imports no default-domain opset", ErrInvalid)
	}
	if need := IRVersionForOpset(op); m.IRVersion < need {
		return fmt.Errorf("%w: opset %d needs IR version ≥ %d, model has %d", ErrInvalid, op, need, m.IRVersion)
	}
	if err := CheckOpset(m.Graph, op); err != nil {
		return err
	}
	return Check(m.Graph)
}

// TopoSort reorders g.Nodes so that every node follows its producers,
// keeping the existing order where it is already valid. It fails on a
// cycle or an undefined input.
func TopoSort(g *Graph) error {
	producer := make(map[string]int, len(g.Nodes))
	for i, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o != "" {
				producer[o] = i
			}
		}
	}
	state := make([]uint8, len(g.Nodes)) // 0 new, 1 visiting, 2 done
	order := make([]*Node, 0, len(g.Nodes))
	var visit func(i int) error
	visit = func(i int) error {
		switch state[i] {
		case 1:
			return fmt.Errorf("%w: cycle through %s", ErrInvalid, g.Nodes[i])
		case 2:
			return nil
		}
		state[i] = 1
		for _, in := range slices.Concat(g.Nodes[i].Inputs, ImplicitInputs(g.Nodes[i])) {
			if p, ok := producer[in]; ok && in != "" {
				if err := visit(p); err != nil {
					return err
				}
			}
		}
		state[i] = 2
		order = append(order, g.Nodes[i])
		return nil
	}
	for i := range g.Nodes {
		if err := visit(i); err != nil {
			return err
		}
	}
	g.Nodes = order
	return nil
}

// ImplicitInputs lists the outer-scope values that the sub-graphs of n (the
// bodies of If, Loop and Scan, and the sub-graphs nested in them) read:
// names their nodes consume that are neither a sub-graph's inputs, its
// initializers nor its nodes' outputs.
func ImplicitInputs(n *Node) []string {
	var out []string
	seen := map[string]bool{}
	for _, a := range n.Attrs {
		for _, sg := range append([]*onnxpb.GraphProto{a.GetG()}, a.GetGraphs()...) {
			for _, in := range outerReads(sg) {
				if !seen[in] {
					seen[in] = true
					out = append(out, in)
				}
			}
		}
	}
	return out
}

// outerReads lists the values sg (nil: none) and its nested sub-graphs read
// from enclosing scopes.
func outerReads(sg *onnxpb.GraphProto) []string {
	if sg == nil {
		return nil
	}
	local := map[string]bool{}
	for _, v := range sg.Input {
		local[v.GetName()] = true
	}
	for _, t := range sg.Initializer {
		local[t.GetName()] = true
	}
	var out []string
	seen := map[string]bool{}
	for _, sn := range sg.Node {
		reads := sn.Input
		for _, a := range sn.Attribute {
			for _, inner := range append([]*onnxpb.GraphProto{a.GetG()}, a.GetGraphs()...) {
				reads = append(slices.Clip(reads), outerReads(inner)...)
			}
		}
		for _, in := range reads {
			if in != "" && !local[in] && !seen[in] {
				seen[in] = true
				out = append(out, in)
			}
		}
		for _, o := range sn.Output {
			local[o] = true
		}
	}
	return out
}
