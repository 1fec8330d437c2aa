package passes

import (
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/ir/onnxpb"
)

// FrozenLinearsAsGemm rewrites every frozen linear of the dynamo form,
// y = MatMul(x, Transpose(W)) with W [out, in] an initializer, into
//
//	y = Reshape(Gemm(Reshape(x, [-1, in]), W, transB=1), Shape(x)[:-1] ++ [out])
//
// which reads W as it is stored. ONNX Runtime folds a Transpose of an
// initializer into a transposed copy when it opens a session: for the
// dynamo form that is a second copy of every backbone weight, made (and
// held) before the weights are prepacked, whereas Gemm prepacks W with
// transB directly, as MatMul prepacks the TorchScript form's pre-transposed
// weight. The rewritten node keeps its name and metadata (the manifest and
// the module lookup read them); a Transpose left without readers is the
// dead-code pass's to remove. Run after the LoRA rewrite, which adapts the
// source's form.
// Graphs before opset 15 (whose Shape has no end) are left as they are:
// the dynamo exporter writes opset 18. So is a graph that runs without
// pre-packing (a tied embedding held once, SharedEmbedding): there the transposed
// copy is what spares each step a transposing pack of every weight, and
// the Gemms make the train step 1.08–1.16× slower (BenchmarkFrozenGemm,
// docs/bench.md).
func FrozenLinearsAsGemm(s *State) error {
	g := s.Model.Graph
	if s.Model.OpsetVersion("") < 15 || s.SharedEmbedding {
		return nil
	}
	prod := producers(g)
	inits := make(map[string]*ir.Tensor, len(g.Initializers))
	for _, t := range g.Initializers {
		inits[t.Name] = t
	}
	b := s.Builder()
	rewritten := false
	for _, n := range append([]*ir.Node(nil), g.Nodes...) {
		t, err := matchLinear(n, prod, inits)
		if err != nil || t == nil || t.Form != FormMatMulTranspose {
			continue // a weight dartc cannot adapt is MatchTargets' error to report
		}
		rewritten = true
		x, y := n.Inputs[0], n.Outputs[0]
		name := n.Name
		flat := b.Op(name+"/flat", "Reshape", []string{x, b.Ints(name+"/flat/shape", -1, t.In)})
		lead := b.Op(name+"/lead", "Shape", []string{x}, ir.AttrInt("end", -1))
		target := b.Op(name+"/shape", "Concat", []string{lead, b.Ints(name+"/out", t.Out)}, ir.AttrInt("axis", 0))
		n.OpType, n.Inputs, n.Attrs = "Gemm", []string{flat, t.Weight.Name}, []*onnxpb.AttributeProto{ir.AttrInt("transB", 1)}
		n.Outputs = []string{b.Unique(name + "/gemm")}
		b.Add(&ir.Node{Name: name + "/unflat", OpType: "Reshape", Inputs: []string{n.Outputs[0], target}, Outputs: []string{y}})
	}
	if !rewritten {
		return nil
	}
	return ir.TopoSort(g)
}
