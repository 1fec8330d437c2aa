package passes

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/ir/onnxpb"
	"google.golang.org/protobuf/proto"
)

// cseMaxConstBytes bounds the initializers CSE compares by content: small
// constants (shapes, axes, scalars); weights are never read.
const cseMaxConstBytes = 1 << 12

// nondeterministic ops are never merged: two draws are two values.
var nondeterministic = map[string]bool{
	"RandomNormal": true, "RandomUniform": true, "RandomNormalLike": true, "RandomUniformLike": true,
	"Multinomial": true, "Dropout": true,
}

// EliminateCommonSubexpressions merges duplicated work: small inline
// initializers with equal type, shape and bytes become one, nodes with the
// same op, attributes and inputs (after earlier merges) become one, and
// Shape nodes whose inputs provably have the same shape (equal symbolic
// dims, shapes.go) become one, in one pass in topological order. The
// gradient rules ask for Shape(x), Transpose(W), broadcast constants and
// the like independently; this pass is what keeps one of each. A backward
// graph asks for the shape of every activation it reshapes back, and most
// of those are the same few shapes ([batch, seq, hidden], …): merging them
// lets the sub-graphs computed from them merge too. Graph inputs and
// outputs keep their names: a node that writes a graph output is kept, and
// so are nodes with sub-graphs and non-deterministic ops.
func EliminateCommonSubexpressions(s *State) error {
	g := s.Model.Graph
	if err := ir.TopoSort(g); err != nil {
		return err
	}
	si := inferShapes(g)
	rename := map[string]string{}
	isInput := map[string]bool{}
	for _, in := range g.Inputs {
		isInput[in.Name] = true
	}
	isOutput := outputNames(g)
	// Constants by content.
	byContent := map[string]string{}
	inits := g.Initializers[:0]
	for _, t := range g.Initializers {
		if t.External == nil && len(t.Raw) <= cseMaxConstBytes && !isInput[t.Name] && !isOutput[t.Name] {
			key := fmt.Sprintf("%d|%v|%x", t.DType, t.Dims, t.Raw)
			if first, ok := byContent[key]; ok {
				rename[t.Name] = first
				continue
			}
			byContent[key] = t.Name
		}
		inits = append(inits, t)
	}
	g.Initializers = inits
	// Nodes by op, attributes and inputs.
	seen := map[string]*ir.Node{}
	nodes := g.Nodes[:0]
	var key strings.Builder
	for _, n := range g.Nodes {
		for i, in := range n.Inputs {
			if r, ok := rename[in]; ok {
				n.Inputs[i] = r
			}
		}
		if !mergeable(n, isOutput) {
			nodes = append(nodes, n)
			continue
		}
		key.Reset()
		if v, ok := si.vals[n.Outputs[0]]; ok && n.OpType == "Shape" && !slices.Contains(v, "") {
			// Equal tokens are equal sizes at run time: the contents, not
			// the input, identify the value (start and end are in them).
			fmt.Fprintf(&key, "Shape|%q", v)
		} else {
			fmt.Fprintf(&key, "%s|%s|%s|%d|%q|", n.Domain, n.OpType, n.Overload, len(n.Outputs), n.Inputs)
		}
		attrs := append(n.Attrs[:0:0], n.Attrs...)
		sort.Slice(attrs, func(i, j int) bool { return attrs[i].GetName() < attrs[j].GetName() })
		for _, a := range attrs {
			b, err := proto.MarshalOptions{Deterministic: true}.Marshal(a)
			if err != nil {
				return fmt.Errorf("passes: cse: %s: %w", n, err)
			}
			key.Write(b)
			key.WriteByte(0)
		}
		k := key.String()
		if first, ok := seen[k]; ok {
			for i, o := range n.Outputs {
				if o != "" {
					rename[o] = first.Outputs[i]
				}
			}
			continue
		}
		seen[k] = n
		nodes = append(nodes, n)
	}
	g.Nodes = nodes
	for _, n := range g.Nodes {
		renameSubgraphReads(n, rename)
	}
	return nil
}

func mergeable(n *ir.Node, isOutput map[string]bool) bool {
	if nondeterministic[n.OpType] || (n.Domain != "" && n.Domain != "ai.onnx") {
		return false
	}
	for _, a := range n.Attrs {
		if a.GetG() != nil || len(a.GetGraphs()) > 0 {
			return false
		}
	}
	for _, o := range n.Outputs {
		if o == "" || isOutput[o] {
			return false
		}
	}
	return true
}

// renameSubgraphReads applies rename to outer-scope values read inside
// If/Loop/Scan bodies and the sub-graphs nested in them.
func renameSubgraphReads(n *ir.Node, rename map[string]string) {
	var walk func(sg *onnxpb.GraphProto)
	walk = func(sg *onnxpb.GraphProto) {
		if sg == nil {
			return
		}
		for _, sn := range sg.Node {
			for i, in := range sn.Input {
				if r, ok := rename[in]; ok {
					sn.Input[i] = r
				}
			}
			for _, a := range sn.Attribute {
				for _, inner := range append(a.GetGraphs(), a.GetG()) {
					walk(inner)
				}
			}
		}
	}
	for _, a := range n.Attrs {
		for _, sg := range append(a.GetGraphs(), a.GetG()) {
			walk(sg)
		}
	}
}
