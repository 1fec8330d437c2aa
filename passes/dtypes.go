package passes

import (
	"fmt"

	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/passes/kernels"
)

// typeScope holds the element types of the values visible in one graph:
// its own, then its enclosing graphs' (sub-graphs read outer values).
type typeScope struct {
	types map[string]ir.DType
	outer *typeScope
}

func newTypeScope(g *ir.Graph, outer *typeScope) *typeScope {
	s := &typeScope{types: map[string]ir.DType{}, outer: outer}
	for _, v := range g.Inputs {
		if v.Type != nil {
			s.types[v.Name] = v.Type.DType
		}
	}
	for _, t := range g.Initializers {
		s.types[t.Name] = t.DType
	}
	return s
}

func (s *typeScope) of(v string) ir.DType {
	for sc := s; sc != nil; sc = sc.outer {
		if dt, ok := sc.types[v]; ok {
			return dt
		}
	}
	return ir.Undefined
}

// outputTypes infers the element types of n's outputs from its inputs'
// (ONNX's type constraints for the ops dartc's graphs hold; an op not
// listed gives its outputs its first input's type).
func outputTypes(n *ir.Node, of func(string) ir.DType) ([]ir.DType, error) {
	out := make([]ir.DType, len(n.Outputs))
	fill := func(dt ir.DType) {
		for i := range out {
			out[i] = dt
		}
	}
	first := ir.Undefined
	if len(n.Inputs) > 0 && n.Inputs[0] != "" {
		first = of(n.Inputs[0])
	}
	switch n.OpType {
	case "Cast":
		fill(ir.DType(n.AttrInt("to", 0)))
	case "CastLike":
		fill(of(n.Input(1)))
	case "Shape", "Size", "NonZero", "ArgMax", "ArgMin":
		fill(ir.Int64)
	case "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Not", "Xor", "IsNaN", "IsInf":
		fill(ir.Bool)
	case "ConstantOfShape":
		fill(ir.Float32)
		if a := n.Attr("value"); a != nil && a.GetT() != nil {
			fill(ir.DType(a.GetT().GetDataType()))
		}
	case "Constant":
		switch {
		case n.Attr("value") != nil:
			fill(ir.DType(n.Attr("value").GetT().GetDataType()))
		case n.Attr("value_float") != nil || n.Attr("value_floats") != nil:
			fill(ir.Float32)
		case n.Attr("value_int") != nil || n.Attr("value_ints") != nil:
			fill(ir.Int64)
		default:
			return nil, fmt.Errorf("passes: %s: cannot tell its type", n)
		}
	case "Where":
		fill(of(n.Input(1)))
	case "TopK":
		fill(first)
		if len(out) > 1 {
			out[1] = ir.Int64
		}
	case "LayerNormalization", "SimplifiedLayerNormalization":
		fill(ir.Float32)
		out[0] = first
	case "Loop", "If":
		attr := "body"
		skip := 1 // a Loop body's first output is the condition
		if n.OpType == "If" {
			attr, skip = "then_branch", 0
		}
		a := n.Attr(attr)
		if a == nil || a.GetG() == nil {
			return nil, fmt.Errorf("passes: %s has no %s", n, attr)
		}
		outs := a.GetG().GetOutput()
		if len(outs) != len(n.Outputs)+skip {
			return nil, fmt.Errorf("passes: %s: %d outputs, its %s declares %d", n, len(n.Outputs), attr, len(outs)-skip)
		}
		for i := range out {
			out[i] = ir.DType(outs[i+skip].GetType().GetTensorType().GetElemType())
		}
	default:
		fill(first)
	}
	return out, nil
}

// subgraphs returns the graph attributes of n (If branches, Loop body).
func subgraphs(n *ir.Node) []int {
	var idx []int
	for i, a := range n.Attrs {
		if a.GetG() != nil {
			idx = append(idx, i)
		}
	}
	return idx
}

// KernelGap is a node whose op has no kernel for its element type in a
// provider's table.
type KernelGap struct {
	Node  string // node name, prefixed by the names of enclosing nodes
	Op    string
	DType ir.DType
}

func (k KernelGap) String() string { return fmt.Sprintf("%s (%s on %s)", k.Node, k.Op, k.DType) }

// CheckKernels lists every node of m (sub-graphs included) whose op has no
// kernel for its element type in table: the type of its data constraint
// (first input; Where: its X input; ConstantOfShape: its output; Cast: its
// input and its target type). Constant nodes, which ONNX Runtime folds into
// initializers, are not checked; ops outside the default domain always
// count as gaps.
func CheckKernels(m *ir.Model, table *kernels.Table) ([]KernelGap, error) {
	var gaps []KernelGap
	var walk func(g *ir.Graph, outer *typeScope, prefix string) error
	walk = func(g *ir.Graph, outer *typeScope, prefix string) error {
		sc := newTypeScope(g, outer)
		for _, n := range g.Nodes {
			outs, err := outputTypes(n, sc.of)
			if err != nil {
				return err
			}
			for i, o := range n.Outputs {
				sc.types[o] = outs[i]
			}
			name := prefix + n.Name
			if n.OpType == "Constant" && n.Domain == "" {
				continue
			}
			var check []ir.DType
			switch n.OpType {
			case "Cast":
				check = []ir.DType{sc.of(n.Input(0)), outs[0]}
			case "Where":
				check = []ir.DType{sc.of(n.Input(1))}
			case "ConstantOfShape":
				check = []ir.DType{outs[0]}
			default:
				if n.Input(0) != "" {
					check = []ir.DType{sc.of(n.Input(0))}
				} else if len(outs) > 0 {
					check = []ir.DType{outs[0]}
				}
			}
			for _, dt := range check {
				if n.Domain != "" || !table.Has(n.OpType, dt) {
					gaps = append(gaps, KernelGap{Node: name, Op: n.OpType, DType: dt})
					break
				}
			}
			for _, i := range subgraphs(n) {
				sg, err := ir.GraphFromProto(n.Attrs[i].GetG(), "")
				if err != nil {
					return err
				}
				if err := walk(sg, sc, name+"/"+n.Attrs[i].GetName()+"/"); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(m.Graph, nil, ""); err != nil {
		return nil, err
	}
	return gaps, nil
}

// ValueTypes infers the element type of every value of g (not of its
// sub-graphs); outer gives the types of the values g reads from enclosing
// graphs (nil for a main graph).
func ValueTypes(g *ir.Graph, outer map[string]ir.DType) (map[string]ir.DType, error) {
	var up *typeScope
	if outer != nil {
		up = &typeScope{types: outer}
	}
	sc := newTypeScope(g, up)
	for _, n := range g.Nodes {
		outs, err := outputTypes(n, sc.of)
		if err != nil {
			return nil, err
		}
		for i, o := range n.Outputs {
			sc.types[o] = outs[i]
		}
	}
	return sc.types, nil
}
