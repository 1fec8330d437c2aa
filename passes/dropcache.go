package passes

import (
	"fmt"
	"regexp"

	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/ir/onnxpb"
)

var pastInputRe = regexp.MustCompile(`^past_key_values\.\d+\.(key|value)$`)
var presentOutputRe = regexp.MustCompile(`^present\.\d+\.(key|value)$`)

// DropCache turns a KV-cache export into a full-sequence graph: every
// past_key_values input becomes an empty [batch, kv_heads, 0, head_dim]
// tensor built in the graph, and the present outputs are dropped. The
// log-prob and training graphs run on whole sequences and need no cache.
func DropCache(s *State) error {
	g := s.Model.Graph
	b := s.Builder()
	ids := g.Input("input_ids")
	if ids == nil {
		return fmt.Errorf("passes: drop-cache: the graph has no input_ids")
	}
	var kept []*ir.ValueInfo
	var batch string
	empty := map[string]bool{} // the emptied caches
	for _, in := range g.Inputs {
		if !pastInputRe.MatchString(in.Name) {
			kept = append(kept, in)
			continue
		}
		if in.Type == nil || len(in.Type.Dims) != 4 || !in.Type.Dims[1].Known() || !in.Type.Dims[3].Known() {
			return fmt.Errorf("passes: drop-cache: %s is %v, want [batch, kv_heads, past, head_dim] with known heads and head size", in.Name, in.Type)
		}
		if batch == "" {
			shape := b.Op("/cache/empty/Shape", "Shape", []string{"input_ids"})
			batch = b.Op("/cache/empty/batch", "Slice", []string{shape, b.Ints("/cache/empty/zero", 0), b.Ints("/cache/empty/one", 1)})
		}
		empty[in.Name] = true
		p := "/cache/empty/" + in.Name
		dims := b.Op(p+"/dims", "Concat", []string{batch, b.Ints(p+"/rest", in.Type.Dims[1].Value, 0, in.Type.Dims[3].Value)},
			ir.AttrInt("axis", 0))
		zero := &ir.Tensor{Name: "value", DType: in.Type.DType, Dims: []int64{1}, Raw: make([]byte, in.Type.DType.Size())}
		b.Add(&ir.Node{Name: p, OpType: "ConstantOfShape", Inputs: []string{dims}, Outputs: []string{in.Name},
			Attrs: []*onnxpb.AttributeProto{ir.AttrTensor("value", zero)}, Doc: "empty cache: the graph runs on whole sequences"})
	}
	g.Inputs = kept
	var outs []*ir.ValueInfo
	for _, o := range g.Outputs {
		if !presentOutputRe.MatchString(o.Name) {
			outs = append(outs, o)
		}
	}
	g.Outputs = outs
	skipEmptyConcats(g, empty)
	return ir.TopoSort(g)
}

// skipEmptyConcats removes the exporters' Concat(past, new) along the
// cache's length axis where past is an emptied cache: its output is new
// itself, so its readers read new and neither the copy nor its gradient
// (a Slice) is made. A Concat that writes a graph output stays.
func skipEmptyConcats(g *ir.Graph, empty map[string]bool) {
	isOutput := outputNames(g)
	rename := map[string]string{}
	kept := g.Nodes[:0]
	for _, n := range g.Nodes {
		if n.OpType == "Concat" && n.Domain == "" && len(n.Inputs) == 2 && empty[n.Inputs[0]] && !isOutput[n.Outputs[0]] {
			if axis := n.AttrInt("axis", 0); axis == 2 || axis == -2 {
				rename[n.Outputs[0]] = n.Inputs[1]
				continue
			}
		}
		kept = append(kept, n)
	}
	g.Nodes = kept
	renameValues(g, rename) // never fails
}
