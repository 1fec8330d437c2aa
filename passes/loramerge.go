package passes

import (
	"fmt"
	"slices"
	"strings"

	"github.com/dartc/dartc/ir"
)

// stackedBranch is one target's branch as DualLoRAStacked built it:
// delta = ((x·A) ⊙ G)·B with A the Concat of the roles' A adapters.
type stackedBranch struct {
	target *Target
	dtype  ir.DType // the adapters' type
	src    string   // the target's input, as the source wrote it
	x      string   // src cast to the adapters' type (or src itself)
	as     []string // the A adapters, in role order
	a      string   // their Concat (or as[0] when there is one role)
	// aProduct is x·A, gated its gated value (what the B product reads),
	// delta the B product.
	aProduct, gated, delta string
}

// MergeLoRAInputs merges the A side of the stacked branches of targets
// that read the same activation (Qwen2's q/k/v projections read the input
// norm's output, gate/up the post-attention norm's): one product
// x·[A_q | A_k | A_v] over the Concat of their stacked adapters, one gate
// multiply over the [.., targets·roles·rank] result, and a Split into each
// target's [.., roles·rank] part for its own B product. The sum is the
// same; the backward then has one x^T·dH and one dH·A^T product per group
// instead of one per target, each over a wider, better-shaped matrix, and
// one contribution fewer per merged target in the sum of x's gradient.
// Targets whose input no other target reads (o_proj, down_proj) keep their
// branch. The adapter inputs are those DualLoRAStacked declared: only the
// wiring changes. Two inputs are the same when they are one value or equal
// Reshapes of one value (the Gemm form flattens x once per linear).
// Groups and their members are ordered by input and by kind, not by the
// order in which the targets were matched.
func MergeLoRAInputs(s *State) error {
	if len(s.stacked) < 2 {
		return nil
	}
	g := s.Model.Graph
	prod := producers(g)
	type groupKey struct {
		input  string
		weight ir.DType // the targets' weight type: whether x is cast
		flat   bool
	}
	groups := map[groupKey][]*stackedBranch{}
	for _, br := range s.stacked {
		k := groupKey{sameValue(g, prod, br.src), br.target.Weight.DType, br.target.Form == FormGemm}
		groups[k] = append(groups[k], br)
	}
	keys := make([]groupKey, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b groupKey) int {
		if c := strings.Compare(a.input, b.input); c != 0 {
			return c
		}
		if a.weight != b.weight {
			return int(a.weight) - int(b.weight)
		}
		return boolOrder(a.flat) - boolOrder(b.flat)
	})
	cons := consumers(g)
	drop := map[*ir.Node]bool{}
	b := s.Builder()
	for _, k := range keys {
		members := groups[k]
		if len(members) < 2 {
			continue
		}
		slices.SortFunc(members, func(a, b *stackedBranch) int {
			if c := kindOrder(a.target.Kind) - kindOrder(b.target.Kind); c != 0 {
				return c
			}
			return strings.Compare(a.target.Module, b.target.Module)
		})
		var as, kinds []string
		var sizes []int64
		for i, br := range members {
			as = append(as, br.as...)
			kinds = append(kinds, br.target.Kind)
			sizes = append(sizes, int64(len(br.as)*s.Opts.Rank))
			drop[prod[br.aProduct]] = true
			drop[prod[br.gated]] = true
			if br.a != br.as[0] {
				drop[prod[br.a]] = true
			}
			if i > 0 && br.x != br.src {
				drop[prod[br.x]] = true // the first member's Cast serves the group
			}
		}
		first := members[0]
		parent := first.target.Module
		if i := strings.LastIndex(parent, "."); i > 0 {
			parent = parent[:i]
		}
		prefix := "/" + pathOf(parent) + "/lora/" + strings.Join(kinds, "_")
		a := b.Op(prefix+"/A/Concat", "Concat", as, ir.AttrInt("axis", 1))
		xa := b.Op(prefix+"/A/MatMul", "MatMul", []string{first.x, a})
		xg := b.Op(prefix+"/gate/Mul", "Mul", []string{xa, s.gates.stacked(first.dtype, k.flat, len(members))})
		parts := splitLast(s, prefix+"/Split", xg, sizes)
		for i, br := range members {
			readers := cons[br.gated]
			if len(readers) != 1 || readers[0].Outputs[0] != br.delta {
				return fmt.Errorf("passes: merge-lora-inputs: the gated A product of %s is read by %d nodes, want its B product only", br.target.Module, len(readers))
			}
			readers[0].Inputs[0] = parts[i]
		}
	}
	g.Nodes = slices.DeleteFunc(g.Nodes, func(n *ir.Node) bool { return drop[n] })
	s.stacked = nil // the records describe the branches as they were
	return ir.TopoSort(g)
}

// sameValue names a value so that equal names mean equal values: the value
// itself, or for a Reshape by a constant shape the name of its input with
// the shape (two flattenings of one activation).
func sameValue(g *ir.Graph, prod map[string]*ir.Node, v string) string {
	n := prod[v]
	if n == nil || n.OpType != "Reshape" || n.Domain != "" || len(n.Inputs) != 2 {
		return v
	}
	shape, ok := int64Const(g, prod[n.Inputs[1]], n.Inputs[1])
	if !ok {
		return v
	}
	return fmt.Sprintf("%s|Reshape%v,allowzero=%d", sameValue(g, prod, n.Inputs[0]), shape, n.AttrInt("allowzero", 0))
}

// int64Const reads v as an int64 constant: an initializer, or the value
// of its producer when that is a Constant node.
func int64Const(g *ir.Graph, producer *ir.Node, v string) ([]int64, bool) {
	if t := g.Initializer(v); t != nil {
		vals, err := t.Int64s()
		return vals, err == nil
	}
	if producer == nil || producer.OpType != "Constant" || producer.Domain != "" {
		return nil, false
	}
	if a := producer.Attr("value"); a != nil && a.GetT() != nil {
		t, err := ir.TensorFromPB(a.GetT(), "")
		if err != nil {
			return nil, false
		}
		vals, err := t.Int64s()
		return vals, err == nil
	}
	if a := producer.Attr("value_ints"); a != nil {
		return a.GetInts(), true
	}
	if a := producer.Attr("value_int"); a != nil {
		return []int64{a.GetI()}, true
	}
	return nil, false
}

// splitLast splits x along its last axis into parts of the given sizes,
// with the sizes as an input from opset 13 and as an attribute before.
func splitLast(s *State, name, x string, sizes []int64) []string {
	b := s.Builder()
	if s.Model.OpsetVersion("") >= 13 {
		return b.OpN(name, "Split", []string{x, b.Ints(name+"/sizes", sizes...)}, len(sizes), ir.AttrInt("axis", -1))
	}
	return b.OpN(name, "Split", []string{x}, len(sizes), ir.AttrInt("axis", -1), ir.AttrInts("split", sizes...))
}

// kindOrder is a target kind's place in DefaultTargets (packed qkv with q).
func kindOrder(kind string) int {
	if kind == "qkv" {
		kind = "q"
	}
	if i := slices.Index(DefaultTargets, kind); i >= 0 {
		return i
	}
	return len(DefaultTargets)
}

func boolOrder(b bool) int {
	if b {
		return 1
	}
	return 0
}
