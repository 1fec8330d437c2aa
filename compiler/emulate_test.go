package compiler_test

import (
	"fmt"
	"maps"
	"path/filepath"
	"testing"

	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/ir/onnxpb"
	"github.com/dartc/dartc/passes"
)

// emulate writes a float32 copy of the low-precision graph at path that
// rounds like it: every value the graph holds in float16 or bfloat16 is
// held in float32 after a round trip through the low type (Cast to low,
// Cast back), weights are widened exactly, and each op computes in float32
// on the rounded inputs and rounds its result. That is the arithmetic of a
// CUDA kernel that computes in float32 internally and stores its result in
// the low type; ONNX Runtime's CPU provider, which has almost no float16 or
// bfloat16 kernels, can run it. It returns the new file's path.
func emulate(t *testing.T, path string) string {
	t.Helper()
	m, err := ir.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := emulateGraph(m.Graph, nil, true); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := ir.Save(m, out, ir.EmitOptions{}); err != nil {
		t.Fatal(err)
	}
	return out
}

func isLow(dt ir.DType) bool { return dt == ir.Float16 || dt == ir.BFloat16 }

// scopeTypes gives the element type of every value g can read: those of
// the enclosing graphs (outer, nil for a main graph) and g's own.
func scopeTypes(g *ir.Graph, outer map[string]ir.DType) (map[string]ir.DType, error) {
	types, err := passes.ValueTypes(g, outer)
	if err != nil {
		return nil, err
	}
	all := make(map[string]ir.DType, len(outer)+len(types))
	maps.Copy(all, outer)
	maps.Copy(all, types)
	return all, nil
}

func emulateGraph(g *ir.Graph, outer map[string]ir.DType, main bool) error {
	all, err := scopeTypes(g, outer)
	if err != nil {
		return err
	}
	for i, t := range g.Initializers {
		if isLow(t.DType) {
			vals, err := t.Float64s()
			if err != nil {
				return err
			}
			f := make([]float32, len(vals))
			for j, v := range vals {
				f[j] = float32(v)
			}
			g.Initializers[i] = ir.NewTensorF32(t.Name, t.Dims, f)
		}
	}
	widen := func(vs []*ir.ValueInfo) {
		for _, v := range vs {
			if v.Type != nil && isLow(v.Type.DType) {
				v.Type.DType = ir.Float32
			}
		}
	}
	widen(g.Inputs)
	widen(g.Outputs)
	widen(g.ValueInfo)
	var nodes []*ir.Node
	k := 0
	cast := func(in, out string, to ir.DType) *ir.Node {
		k++
		return &ir.Node{Name: fmt.Sprintf("emulate/%s/%d", out, k), OpType: "Cast", Inputs: []string{in}, Outputs: []string{out},
			Attrs: []*onnxpb.AttributeProto{ir.AttrInt("to", int64(to))}}
	}
	for _, n := range g.Nodes {
		for _, i := range subgraphIdx(n) {
			body, err := ir.GraphFromProto(n.Attrs[i].GetG(), "")
			if err != nil {
				return err
			}
			if err := emulateGraph(body, all, false); err != nil {
				return err
			}
			a, err := ir.AttrGraph(n.Attrs[i].GetName(), body)
			if err != nil {
				return err
			}
			n.Attrs[i] = a
		}
		if n.OpType == "Constant" || n.OpType == "ConstantOfShape" {
			if a := n.Attr("value"); a != nil && isLow(ir.DType(a.GetT().GetDataType())) {
				ct, err := ir.TensorFromPB(a.GetT(), "")
				if err != nil {
					return err
				}
				vals, _ := ct.Float64s()
				f := make([]float32, len(vals))
				for j, v := range vals {
					f[j] = float32(v)
				}
				n.Attrs = []*onnxpb.AttributeProto{ir.AttrTensor("value", ir.NewTensorF32(ct.Name, ct.Dims, f))}
				nodes = append(nodes, n)
				continue
			}
		}
		var rounds []*ir.Node
		for j, o := range n.Outputs {
			dt := all[o] // g's own type: a node output shadows an outer value
			if !isLow(dt) || o == "" {
				continue
			}
			if n.OpType == "Cast" {
				// Cast to low, then back: the value is rounded.
				raw := o + "/emulated_low"
				n.Outputs[j] = raw
				rounds = append(rounds, cast(raw, o, ir.Float32))
				continue
			}
			raw := o + "/emulated_f32"
			n.Outputs[j] = raw
			rounds = append(rounds, cast(raw, raw+"/low", dt), cast(raw+"/low", o, ir.Float32))
		}
		nodes = append(nodes, n)
		nodes = append(nodes, rounds...)
	}
	g.Nodes = nodes
	return nil
}

func subgraphIdx(n *ir.Node) []int {
	var idx []int
	for i, a := range n.Attrs {
		if a.GetG() != nil {
			idx = append(idx, i)
		}
	}
	return idx
}
