package passes

import (
	"fmt"
	"path/filepath"

	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/ir/onnxpb"
)

// Widen turns a float32 model into a float64 one before the other passes
// (dartc compile --precision fp64), so that every emitted graph computes in
// float64 as if the model had been exported that way: central differences
// of its loss then resolve the gradient to about 1e-7 (dartc gradcheck's
// precise check), where float32 resolves a trained model's loss to a few
// digits only.
//
// Every float32 tensor becomes float64: initializers (inline ones converted
// here; external ones retyped, their bytes converted by the compiler into
// weights.float64.data through State.ConvertedWeights), Constant and
// ConstantOfShape values (value_float and value_floats too), the types of
// graph inputs, outputs and value_info, Cast targets and dtype attributes,
// in sub-graphs as well. The passes read no external weight bytes, so the
// source file is read once, by the conversion.
func Widen(s *State) error {
	if s.Opts.Precision != ir.Float64 {
		return nil
	}
	g := s.Model.Graph
	if act, err := activationType(g); err != nil || act != ir.Float32 {
		return fmt.Errorf("passes: precision float64 widens float32 models; this one computes in %s (compile it without --precision)", act)
	}
	if s.ConvertedWeights == nil {
		s.ConvertedWeights = map[string]ir.External{}
	}
	dir := ""
	if s.Model.Path != "" {
		dir = filepath.Dir(s.Model.Path)
	}
	return widenGraph(g, s.ConvertedWeights, dir)
}

func widenGraph(g *ir.Graph, converted map[string]ir.External, dir string) error {
	for i, t := range g.Initializers {
		if t.DType != ir.Float32 {
			continue
		}
		if t.External != nil {
			converted[t.Name] = *t.External
			t.DType = ir.Float64
			continue
		}
		g.Initializers[i] = t.As(ir.Float64)
	}
	for _, vs := range [][]*ir.ValueInfo{g.Inputs, g.Outputs, g.ValueInfo} {
		for _, v := range vs {
			if v.Type != nil && v.Type.DType == ir.Float32 {
				v.Type.DType = ir.Float64
			}
		}
	}
	for _, n := range g.Nodes {
		for i, a := range n.Attrs {
			w, err := widenAttr(n, a, dir)
			if err != nil {
				return fmt.Errorf("passes: widen %s: %w", n.Name, err)
			}
			n.Attrs[i] = w
		}
	}
	return nil
}

// widenAttr returns a with its float32 content in float64.
func widenAttr(n *ir.Node, a *onnxpb.AttributeProto, dir string) (*onnxpb.AttributeProto, error) {
	float, double := int64(ir.Float32), int64(ir.Float64)
	switch {
	case (a.GetName() == "to" && n.OpType == "Cast") || (a.GetName() == "dtype" && a.GetType() == onnxpb.AttributeProto_INT):
		if a.GetI() == float {
			return ir.AttrInt(a.GetName(), double), nil
		}
	case n.OpType == "Constant" && a.GetName() == "value_float":
		return ir.AttrTensor("value", ir.NewScalar("", ir.Float64, float64(a.GetF()))), nil
	case n.OpType == "Constant" && a.GetName() == "value_floats":
		vals := make([]float64, len(a.GetFloats()))
		for i, f := range a.GetFloats() {
			vals[i] = float64(f)
		}
		return ir.AttrTensor("value", ir.NewTensorF64("", []int64{int64(len(vals))}, vals)), nil
	case a.GetT() != nil && a.GetT().GetDataType() == int32(ir.Float32):
		t, err := ir.TensorFromPB(a.GetT(), dir)
		if err != nil {
			return nil, err
		}
		if t.External != nil {
			return nil, fmt.Errorf("attribute %q holds external float32 data, which is not converted: re-export with the tensor inline", a.GetName())
		}
		return ir.AttrTensor(a.GetName(), t.As(ir.Float64)), nil
	case a.GetG() != nil || len(a.GetGraphs()) > 0:
		if len(a.GetGraphs()) > 0 {
			return nil, fmt.Errorf("attribute %q holds several sub-graphs, which widening does not handle", a.GetName())
		}
		sub, err := ir.GraphFromProto(a.GetG(), dir)
		if err != nil {
			return nil, err
		}
		if err := widenGraph(sub, map[string]ir.External{}, dir); err != nil {
			return nil, err
		}
		return ir.AttrGraph(a.GetName(), sub)
	}
	return a, nil
}
