package passes

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/ir/onnxpb"
)

// ErrNoGradientRule reports an op on an active path without a rule.
var ErrNoGradientRule = errors.New("passes: no gradient rule")

// ErrNoAdapters reports a training compile of a graph with no adapters.
var ErrNoAdapters = fmt.Errorf("passes: no adapter inputs to differentiate: the training graph needs the dual-lora pass")

// Autodiff appends the reverse-mode gradient of the loss with respect to
// every adapter input, starting from s.Seeds, and adds one output
// grad.<adapter> per adapter (DESIGN.md §5).
//
// Only nodes on a path from an adapter input to a seed are differentiated
// (activity analysis): integer and shape sub-graphs and frozen weights get
// no gradient. Contributions to a value from several consumers are summed.
// A node on an active path whose op has no rule is an error naming the op and
// the node.
func Autodiff(s *State) error {
	if len(s.AdapterInputs) == 0 {
		return ErrNoAdapters
	}
	if len(s.Seeds) == 0 {
		return fmt.Errorf("passes: autodiff: no seed gradient (run a loss head first)")
	}
	if v := s.Model.OpsetVersion(""); v < minTrainOpset {
		if v < 13 {
			return fmt.Errorf("passes: autodiff needs default-domain opset ≥ 13, the graph has %d: re-export with opset 17 or newer", v)
		}
		// 13 to 15 differ from 16 only in ops the rules and the loss head
		// never emit with other meanings (RoiAlign's default mode, the
		// training outputs of BatchNormalization); 15 brings CastLike, 16
		// the reduction of ScatterElements that the loss head's gradient
		// uses.
		s.Model.SetOpset("", minTrainOpset)
		s.Model.IRVersion = max(s.Model.IRVersion, ir.IRVersionForOpset(minTrainOpset))
	}
	var wrt []string
	for _, in := range s.AdapterInputs {
		wrt = append(wrt, in.Name)
	}
	grads, err := differentiate(s, wrt, s.Seeds)
	if err != nil {
		return err
	}
	s.Grads = grads
	g := s.Model.Graph
	b := s.Builder()
	// A loss-scaled graph (float16: the head's LossScaleInput) gives each
	// gradient divided by the scale. The Div reads a float32 graph input,
	// so pass precision leaves it in float32.
	scale := g.Input(LossScaleInput)
	for _, in := range s.AdapterInputs {
		name := GradPrefix + in.Name
		b.Reserve(name)
		if scale != nil {
			by := LossScaleInput
			if scale.Type.DType != in.Type.DType {
				by = castTo(b, "/grad/out/"+in.Name+"/scale/Cast", LossScaleInput, in.Type.DType)
			}
			b.Add(&ir.Node{Name: "/grad/out/" + in.Name, OpType: "Div", Inputs: []string{grads[in.Name], by}, Outputs: []string{name}})
		} else {
			b.Add(&ir.Node{Name: "/grad/out/" + in.Name, OpType: "Identity", Inputs: []string{grads[in.Name]}, Outputs: []string{name}})
		}
		g.Outputs = append(g.Outputs, &ir.ValueInfo{Name: name, Type: in.Type.Clone(), Doc: "gradient of the loss with respect to " + in.Name})
	}
	return ir.TopoSort(g)
}

// minTrainOpset is the lowest default-domain opset of training graphs.
const minTrainOpset = 16

// gradCtx is what a rule sees: the forward node and the gradients of its
// outputs, in the vocabulary of ORT's gradient builders — I(i)/O(i) the
// forward inputs and outputs, GO(i) the outputs' gradients, Need(i) whether
// input i needs a gradient.
type gradCtx struct {
	s    *State
	b    *ir.Builder
	n    *ir.Node
	gy   []string
	need []bool
	tag  string
	prod *producerIndex
}

// folded is what a rule returns for a needed input whose gradient through
// this node it has folded into another input's (x·Sigmoid(x) gives the
// whole derivative to x): the input gets no contribution from the node.
const folded = "\x00folded"

// producerIndex maps values to the nodes that produce them, indexing the
// nodes the rules append as it is asked.
type producerIndex struct {
	g       *ir.Graph
	indexed int
	m       map[string]*ir.Node
}

func (p *producerIndex) of(v string) *ir.Node {
	for ; p.indexed < len(p.g.Nodes); p.indexed++ {
		for _, o := range p.g.Nodes[p.indexed].Outputs {
			if o != "" {
				p.m[o] = p.g.Nodes[p.indexed]
			}
		}
	}
	return p.m[v]
}

func (c *gradCtx) I(i int) string  { return c.n.Input(i) }
func (c *gradCtx) O(i int) string  { return c.n.Outputs[i] }
func (c *gradCtx) GO(i int) string { return c.gy[i] }
func (c *gradCtx) Need(i int) bool { return i < len(c.need) && c.need[i] }
func (c *gradCtx) NumInputs() int  { return len(c.n.Inputs) }
func (c *gradCtx) opset() int64    { return c.s.Model.OpsetVersion("") }
func (c *gradCtx) errorf(f string, a ...any) error {
	return fmt.Errorf("passes: autodiff: %s: %s", c.n, fmt.Sprintf(f, a...))
}

// op emits a node named under the gradient of the forward node.
func (c *gradCtx) op(suffix, opType string, inputs []string, attrs ...*onnxAttr) string {
	return c.b.Op(c.tag+"/"+suffix, opType, inputs, attrs...)
}

func differentiate(s *State, wrt []string, seeds map[string]string) (map[string]string, error) {
	g := s.Model.Graph
	b := s.Builder()
	s.shapes = inferShapes(g)
	defer func() { s.shapes = nil }()
	// Forward activity: values that depend on wrt through differentiable
	// inputs.
	fwd := map[string]bool{}
	for _, w := range wrt {
		fwd[w] = true
	}
	for _, n := range g.Nodes {
		r, known := rules[ruleKey(n)]
		active := false
		for i, in := range n.Inputs {
			if in != "" && fwd[in] && (!known || r.differentiable(i)) {
				active = true
			}
		}
		if !active || (known && r.kind == kindZero) || isIntegerCast(n) {
			continue
		}
		for _, o := range n.Outputs {
			if o != "" {
				fwd[o] = true
			}
		}
	}
	// Backward need: values the seeds depend on.
	bwd := map[string]bool{}
	for v := range seeds {
		bwd[v] = true
	}
	for i := len(g.Nodes) - 1; i >= 0; i-- {
		n := g.Nodes[i]
		for _, o := range n.Outputs {
			if bwd[o] {
				for _, in := range n.Inputs {
					bwd[in] = true
				}
				break
			}
		}
	}
	contrib := map[string][]string{}
	for v, gv := range seeds {
		if !fwd[v] {
			return nil, fmt.Errorf("passes: autodiff: %s does not depend on any adapter", v)
		}
		contrib[v] = []string{gv}
	}
	nodes := append([]*ir.Node(nil), g.Nodes...)
	prod := &producerIndex{g: g, m: map[string]*ir.Node{}}
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		onPath := false
		for _, o := range n.Outputs {
			if fwd[o] && bwd[o] {
				onPath = true
			}
		}
		if !onPath {
			continue
		}
		gy := make([]string, len(n.Outputs))
		any := false
		for j, o := range n.Outputs {
			if len(contrib[o]) > 0 {
				gy[j] = sumGrads(b, "/grad"+nodeTag(n)+"/sum_"+fmt.Sprint(j), contrib[o])
				any = true
			}
		}
		if !any {
			continue
		}
		r, ok := rules[ruleKey(n)]
		if !ok {
			return nil, fmt.Errorf("%w for %s: %s is on the path from the adapters to the loss; export the model in standard ONNX ops (the TorchScript or dynamo exporter: see models/export) rather than with fused inference ops", ErrNoGradientRule, ruleKey(n), n)
		}
		need := make([]bool, len(n.Inputs))
		for j, in := range n.Inputs {
			need[j] = in != "" && fwd[in] && r.differentiable(j)
		}
		c := &gradCtx{s: s, b: b, n: n, gy: gy, need: need, tag: "/grad" + nodeTag(n), prod: prod}
		gis, err := r.fn(c)
		if err != nil {
			return nil, err
		}
		// The driver distrusts the rules.
		if len(gis) != len(n.Inputs) {
			panic(fmt.Sprintf("passes: rule for %s returned %d gradients for %d inputs; this is a bug in the rule", ruleKey(n), len(gis), len(n.Inputs)))
		}
		for j, gi := range gis {
			if need[j] && gi == "" {
				panic(fmt.Sprintf("passes: rule for %s gave no gradient for needed input %d of %s; this is a bug in the rule", ruleKey(n), j, n))
			}
			if need[j] && gi != folded {
				contrib[n.Inputs[j]] = append(contrib[n.Inputs[j]], gi)
			}
		}
	}
	out := map[string]string{}
	for _, w := range wrt {
		if len(contrib[w]) == 0 {
			// No path to the loss: the gradient is zero.
			out[w] = b.Op("/grad/"+w+"/zero", "Sub", []string{w, w})
			continue
		}
		out[w] = sumGrads(b, "/grad/"+w+"/sum", contrib[w])
	}
	return out, nil
}

type onnxAttr = onnxpb.AttributeProto

func nodeTag(n *ir.Node) string {
	name := n.Name
	if name == "" {
		name = n.OpType + "_" + n.Outputs[0]
	}
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	return name
}

// sumGrads adds up a value's gradient contributions as a chain of Adds:
// ONNX Runtime's CPU Add is faster than its variadic Sum at every input
// count (a graph of 2–6 [1024, 768] inputs takes 0.70–0.77× the time with
// Adds on 2 cores: BenchmarkSumVsAdds in package compiler).
func sumGrads(b *ir.Builder, name string, gs []string) string {
	sorted := append([]string(nil), gs...)
	sort.Strings(sorted) // deterministic graphs
	acc := sorted[0]
	for i, g := range sorted[1:] {
		at := name
		if len(sorted) > 2 {
			at = fmt.Sprintf("%s/%d", name, i)
		}
		acc = b.Op(at, "Add", []string{acc, g})
	}
	return acc
}

func ruleKey(n *ir.Node) string {
	if n.Domain != "" && n.Domain != "ai.onnx" {
		return n.Domain + ":" + n.OpType
	}
	return n.OpType
}

// isIntegerCast reports a Cast to a non-float type: its output carries no
// gradient.
func isIntegerCast(n *ir.Node) bool {
	return n.OpType == "Cast" && !ir.DType(n.AttrInt("to", 0)).IsFloat()
}
