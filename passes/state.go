package passes

import (
	"fmt"

	"github.com/dartc/dartc/ir"
)

// Options are the user's choices for the rewrite.
type Options struct {
	// Targets are the module kinds to adapt (q, k, v, o, gate, up, down).
	Targets []string
	// Roles name the adapters; role k serves positions where role_ids == k.
	Roles []string
	Rank  int
	Alpha float64
	// HeadChunk is the number of positions the log-prob and GRPO heads
	// project onto the vocabulary at a time (0: DefaultHeadChunk).
	HeadChunk int
	// LogprobsEntropy adds the entropy output to logprobs.onnx.
	LogprobsEntropy bool
	// Precision is the type the backbone computes in: float16 or bfloat16
	// (pass Precision); Undefined or Float32 leaves the graph as it is.
	Precision ir.DType
	// Provider names the kernel table (package kernels) that decides where
	// the low type can run: cuda or cpu.
	Provider string
	// AttentionBlocks is the number of query blocks of the whole-sequence
	// graphs' causal attention (BlockCausalAttention); 0:
	// DefaultAttentionBlocks, 1: the full score square.
	AttentionBlocks int
	// TiedEmbedding says the lm_head's weight is the embedding matrix and
	// the graphs should hold it once (pass TieEmbedding); off, the graphs
	// keep what the export stores.
	TiedEmbedding bool
	// RepeatedKV keeps the exporter's repeated keys and values in the
	// attention blocks instead of grouping the queries (BlockCausalAttention):
	// the form before grouping, for comparisons.
	RepeatedKV bool
}

func (o Options) attentionBlocks() int {
	if o.AttentionBlocks == 0 {
		return DefaultAttentionBlocks
	}
	return o.AttentionBlocks
}

// Scale is the LoRA scale alpha / rank.
func (o Options) Scale() float64 { return o.Alpha / float64(o.Rank) }

// RoleInput is the name of the per-position role input.
const RoleInput = "role_ids"

// State is what a pipeline of passes works on.
type State struct {
	Model *ir.Model
	Opts  Options

	// Targets are the linears found by MatchTargets, in graph order.
	Targets []*Target
	// AdapterInputs lists the adapter graph inputs added by DualLoRA.
	AdapterInputs []*ir.ValueInfo
	// Seeds maps a forward value to the value holding the loss's gradient
	// with respect to it: where the autodiff starts (set by GRPOHead).
	Seeds map[string]string
	// Grads maps each adapter input to its gradient value (set by Autodiff).
	Grads map[string]string
	// ConvertedWeights maps each external initializer that Precision
	// retyped to where its float32 source bytes are: the compiler writes
	// the converted bytes and points the initializer at them.
	ConvertedWeights map[string]ir.External
	// SharedEmbedding is set by TieEmbedding when one initializer is both
	// the embedding table and the lm_head's weight.
	SharedEmbedding bool

	b       *ir.Builder
	shapes  *shapeInfo       // symbolic shapes of the forward graph, during autodiff
	gates   *gateCache       // the LoRA gates, built once per type (DualLoRA)
	stacked []*stackedBranch // the branches DualLoRAStacked built, in target order
}

// NewState starts a pipeline over m.
func NewState(m *ir.Model, opts Options) *State {
	return &State{Model: m, Opts: opts}
}

// Builder returns the state's builder over the main graph, created on first
// use.
func (s *State) Builder() *ir.Builder {
	if s.b == nil {
		s.b = ir.NewBuilder(s.Model.Graph)
	}
	return s.b
}

// producers maps each value name to the node that writes it.
func producers(g *ir.Graph) map[string]*ir.Node {
	p := make(map[string]*ir.Node, len(g.Nodes))
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			p[o] = n
		}
	}
	return p
}

// outputNames is the set of the graph's output names.
func outputNames(g *ir.Graph) map[string]bool {
	out := make(map[string]bool, len(g.Outputs))
	for _, o := range g.Outputs {
		out[o.Name] = true
	}
	return out
}

// consumers maps each value name to the nodes that read it.
func consumers(g *ir.Graph) map[string][]*ir.Node {
	c := make(map[string][]*ir.Node, len(g.Nodes))
	for _, n := range g.Nodes {
		for _, in := range n.Inputs {
			if in != "" {
				c[in] = append(c[in], n)
			}
		}
	}
	return c
}

// activationType finds the floating-point type of the model's activations:
// the element type of the logits output.
func activationType(g *ir.Graph) (ir.DType, error) {
	for _, o := range g.Outputs {
		if o.Name == "logits" && o.Type != nil {
			return o.Type.DType, nil
		}
	}
	for _, o := range g.Outputs {
		if o.Type != nil && o.Type.DType.IsFloat() {
			return o.Type.DType, nil
		}
	}
	return ir.Undefined, fmt.Errorf("passes: the graph has no floating-point output to take the activation type from")
}
