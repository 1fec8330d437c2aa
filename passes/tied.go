package passes

import (
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/ir/onnxpb"
)

// TieEmbedding makes a model whose lm_head shares the embedding matrix
// (Options.TiedEmbedding) hold that matrix once. PyTorch's TorchScript
// exporter stores a tied matrix twice: the embedding table E [vocab, hidden]
// that Gather(E, input_ids) reads, and the lm_head's transposed copy
// W [hidden, vocab] that MatMul(x, W) reads as a separate initializer. The
// pass keeps W and gathers the embedding rows from it:
// Transpose(Gather(W, input_ids, axis=1), perm=[1, 2, 0]), which moves only
// the [hidden, batch, seq] values the step reads, and leaves E to the
// dead-code pass. The lm_head and the heads built on it read W as before.
// It sets State.SharedEmbedding, as it does for a graph that shares the
// matrix already (the dynamo export's MatMul(x, Transpose(E))): ONNX
// Runtime's pre-packing would copy the lm_head's weight into a buffer of
// its own while the Gather keeps the original, so such a graph holds the
// matrix once only when run without it (the compiler records that in the
// manifest).
//
// Nothing is read of the weights: that the two are one matrix is the
// model's own statement (tie_word_embeddings), which the caller sets in
// Options when the user asks for it (dartc compile --share-embedding: the
// memory costs step time on the CPU, where every GEMM then packs its
// weight). Graphs of another shape are left alone.
func TieEmbedding(s *State) error {
	if !s.Opts.TiedEmbedding {
		return nil
	}
	g := s.Model.Graph
	prod := producers(g)
	head := prod[LogitsOutput]
	for head != nil && (head.OpType == "Cast" || head.OpType == "Identity") {
		head = prod[head.Inputs[0]]
	}
	if head == nil || head.OpType != "MatMul" || head.Domain != "" {
		return nil
	}
	var gather *ir.Node
	for _, n := range g.Nodes {
		if n.OpType == "Gather" && n.Domain == "" && n.Input(1) == "input_ids" {
			gather = n
			break
		}
	}
	if gather == nil {
		return nil
	}
	// The dynamo export shares the matrix already: MatMul(x, Transpose(E)).
	if t := prod[head.Inputs[1]]; t != nil && t.OpType == "Transpose" && t.Inputs[0] == gather.Inputs[0] {
		s.SharedEmbedding = true
		return nil
	}
	w := g.Initializer(head.Inputs[1])
	ids := g.Input("input_ids")
	if w == nil || len(w.Dims) != 2 || gather.AttrInt("axis", 0) != 0 ||
		gather.Inputs[0] == w.Name || ids == nil || ids.Type == nil || len(ids.Type.Dims) != 2 {
		return nil
	}
	e := g.Initializer(gather.Inputs[0])
	if e == nil || len(e.Dims) != 2 || e.DType != w.DType || e.Dims[0] != w.Dims[1] || e.Dims[1] != w.Dims[0] {
		return nil
	}
	b := s.Builder()
	// Gather(W, ids, axis=1) is [hidden, batch, seq]; the Transpose writes
	// the name the old Gather wrote, so its readers are untouched.
	embedded := gather.Outputs[0]
	gather.Name = b.Unique(gather.Name + "/tied")
	gather.Inputs[0] = w.Name
	gather.Outputs[0] = b.Unique(embedded + "/tied")
	gather.Attrs = []*onnxpb.AttributeProto{ir.AttrInt("axis", 1)}
	b.Add(&ir.Node{Name: gather.Name + "/Transpose", OpType: "Transpose", Inputs: []string{gather.Outputs[0]},
		Outputs: []string{embedded}, Attrs: []*onnxpb.AttributeProto{ir.AttrInts("perm", 1, 2, 0)}})
	s.SharedEmbedding = true
	return ir.TopoSort(g)
}
