package passes

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/dartc/dartc/internal/float16"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/ir/onnxpb"
	"github.com/dartc/dartc/passes/kernels"
)

// Precision rewrites a float32 graph to run in Options.Precision (float16
// or bfloat16) where the target provider (Options.Provider) has kernels,
// and in float32 elsewhere:
//
//   - The backbone's weights — the matrices of its linears (MatMul or Gemm
//     weights), their biases, the embedding table and the lm_head — become
//     low-precision initializers. External ones are only retyped here; the
//     compiler streams their converted bytes to a new data file (State.
//     ConvertedWeights). Norm weights, rotary tables and other small
//     constants stay float32.
//   - MatMul and Gemm run in the low type when one input is an activation
//     or a weight (not a value computed from constants and integers alone,
//     such as the rotary angles position·inv_freq).
//   - Ops that need float32 for accuracy always run in float32: RMSNorm's
//     statistics (Pow, ReduceMean, Sqrt, Reciprocal), Softmax, Exp, Log,
//     Cos, Sin, Range, CumSum; so does everything downstream of the lm_head
//     projection (log-softmax, entropy, the GRPO loss, decode's sampler),
//     MatMul and Gemm excepted (the head's gradient projects back through
//     the weight in the low type).
//   - Any other op runs in the low type when an input is low, every other
//     float input is low or a constant that fits the low type (or a Cast
//     from bool), and the provider has a kernel for it; otherwise in
//     float32.
//
// Casts appear only where a value crosses between the two: one Cast per
// value and type, a value is never cast back to the type it was cast from
// (its source is used), constants are converted in place. Graph inputs and
// outputs keep their float32 types (adapters, their gradients, the KV
// cache, logits, log-probs), so AdamW and the runtime are unchanged; the
// LoRA branch computes in the low type from the float32 adapters, cast at
// use (as PyTorch's autocast does).
//
// For the provider's other gaps: integer Pad (no CUDA kernel) pads in
// float64 between two Casts, exact for integers below 2⁵³. CastLike becomes
// Cast (its target type is known).
func Precision(s *State) error {
	low := s.Opts.Precision
	if low == ir.Undefined || low == ir.Float32 || low == ir.Float64 { // float64: Widen's
		return nil
	}
	if low != ir.Float16 && low != ir.BFloat16 {
		return fmt.Errorf("passes: precision %s: choose float32, float16 or bfloat16", low)
	}
	table, err := kernels.For(s.Opts.Provider)
	if err != nil {
		return err
	}
	g := s.Model.Graph
	if act, err := activationType(g); err != nil || act != ir.Float32 {
		return fmt.Errorf("passes: precision %s applies to float32 models; this one computes in %s (compile it without --precision)", low, act)
	}
	p := &precision{s: s, low: low, table: table}
	p.reserveNames(g)
	p.findBackbone(g)
	if err := p.convertWeights(g); err != nil {
		return err
	}
	// Graph outputs keep their names and types: their producers write a
	// renamed value, and the end of the rewrite casts it back when needed.
	renamed := map[string]string{}
	var outs []*ir.ValueInfo // the renamed outputs, in graph order
	var origs []string       // their names
	for _, o := range g.Outputs {
		if o.Type != nil && o.Type.DType == ir.Float32 && g.Initializer(o.Name) == nil && g.Input(o.Name) == nil {
			renamed[o.Name] = p.b.Unique(o.Name + "/" + shortType(low) + "_src")
			outs, origs = append(outs, o), append(origs, o.Name)
		}
	}
	if err := renameValues(g, renamed); err != nil {
		return err
	}
	sc, err := p.rewrite(g, nil, false)
	if err != nil {
		return err
	}
	// In output order, not the map's: the Casts back are appended in this
	// order, and the same model must compile to the same bytes.
	back := map[string]string{}
	for i, o := range outs {
		back[p.want(sc, o.Name, ir.Float32, &g.Nodes)] = origs[i]
		o.Name = origs[i]
	}
	if err := renameValues(g, back); err != nil {
		return err
	}
	if err := ir.TopoSort(g); err != nil {
		return err
	}
	s.Model.SetMetadata("dartc.precision", low.String()+" on "+s.Opts.Provider)
	return nil
}

func shortType(dt ir.DType) string {
	if dt == ir.BFloat16 {
		return "bf16"
	}
	return "fp16"
}

// fp32Ops run in float32 whatever their inputs: accuracy needs it.
var fp32Ops = map[string]bool{
	"Pow": true, "ReduceMean": true, "ReduceSumSquare": true, "ReduceLogSumExp": true, "Sqrt": true,
	"Reciprocal": true, "Softmax": true, "LogSoftmax": true, "Exp": true, "Log": true, "Cos": true,
	"Sin": true, "Range": true, "CumSum": true, "RMSNormalization": true,
	"SimplifiedLayerNormalization": true, "LayerNormalization": true, "RotaryEmbedding": true,
}

// valueClass says how a float32 value may change type.
type valueClass uint8

const (
	activation valueClass = iota // computed from activations or weights
	aux                          // computed from constants and integers only (rotary angles, masks)
	flexible                     // a constant that fits the low type, or a Cast from bool
)

type precision struct {
	s     *State
	low   ir.DType
	table *kernels.Table
	b     *ir.Builder // names new values and nodes uniquely

	vocab   int64
	weights map[string]bool // backbone weights to convert
	class   map[string]valueClass
	head    map[string]bool // values downstream of the lm_head projection
	cache   map[*typeScope]map[string]string
	consts  map[string]*ir.Tensor // float32 inline constants by name (initializers, Constant nodes)
	castSrc map[string]string     // output → input of float-to-float Casts
}

// reserveNames starts the pass's builder over g, with the names used in
// its sub-graphs reserved too: new values must not shadow them.
func (p *precision) reserveNames(g *ir.Graph) {
	p.b = ir.NewBuilder(g)
	for _, n := range g.Nodes {
		for _, i := range subgraphs(n) {
			p.reservePB(n.Attrs[i].GetG())
		}
	}
}

func (p *precision) reservePB(g *onnxpb.GraphProto) {
	for _, v := range g.GetInput() {
		p.b.Reserve(v.GetName())
	}
	for _, n := range g.GetNode() {
		p.b.Reserve(n.GetName())
		p.b.Reserve(n.GetOutput()...)
		for _, a := range n.GetAttribute() {
			if a.GetG() != nil {
				p.reservePB(a.GetG())
			}
		}
	}
}

// findBackbone finds the weights to convert and the vocabulary size: the
// embedding table is the initializer a Gather indexes with input_ids.
func (p *precision) findBackbone(g *ir.Graph) {
	p.weights = map[string]bool{}
	prod := producers(g)
	isInit := func(v string) bool {
		t := g.Initializer(v)
		return t != nil && t.DType == ir.Float32 && len(t.Dims) >= 1
	}
	for _, n := range g.Nodes {
		switch n.OpType {
		case "Gather":
			// axis 1: a tied table stored [hidden, vocab] (TieEmbedding).
			axis := n.AttrInt("axis", 0)
			if isInit(n.Input(0)) && len(g.Initializer(n.Input(0)).Dims) == 2 && g.Input(n.Input(1)) != nil && n.Input(1) == "input_ids" && (axis == 0 || axis == 1) {
				p.weights[n.Input(0)] = true
				p.vocab = g.Initializer(n.Input(0)).Dims[axis]
			}
		case "MatMul", "Gemm":
			w := n.Input(1)
			if t := prod[w]; t != nil && t.OpType == "Transpose" {
				w = t.Input(0)
			}
			if isInit(w) && len(g.Initializer(w).Dims) == 2 && !isAuxInit(g, n) {
				p.weights[w] = true
			}
			if n.OpType == "Gemm" && isInit(n.Input(2)) {
				p.weights[n.Input(2)] = true
			}
		}
	}
	// Biases: vectors (not scalars such as eps) added to a value; after the
	// LoRA rewrite the bias Add may read the branch's sum, not the MatMul.
	for _, n := range g.Nodes {
		if n.OpType != "Add" {
			continue
		}
		for _, in := range n.Inputs {
			if isInit(in) && len(g.Initializer(in).Dims) == 1 && g.Initializer(in).Dims[0] >= 16 {
				p.weights[in] = true
			}
		}
	}
}

// isAuxInit reports a MatMul whose other input is an initializer too (a
// product of constants, such as inv_freq times positions).
func isAuxInit(g *ir.Graph, n *ir.Node) bool {
	return g.Initializer(n.Input(0)) != nil
}

// convertWeights retypes the backbone weights: inline ones are converted
// now, external ones are recorded for the compiler to stream.
func (p *precision) convertWeights(g *ir.Graph) error {
	if p.s.ConvertedWeights == nil {
		p.s.ConvertedWeights = map[string]ir.External{}
	}
	for i, t := range g.Initializers {
		if !p.weights[t.Name] {
			continue
		}
		if t.External != nil {
			if t.External.Length != t.NumElements()*4 {
				return fmt.Errorf("passes: weight %q: %d bytes of external data for %d float32 values", t.Name, t.External.Length, t.NumElements())
			}
			p.s.ConvertedWeights[t.Name] = *t.External
			c := *t
			ext := *t.External
			ext.Length = t.NumElements() * int64(p.low.Size())
			c.External, c.DType = &ext, p.low
			g.Initializers[i] = &c
			continue
		}
		c := t.As(p.low)
		c.Name = t.Name
		g.Initializers[i] = c
	}
	return nil
}

// isHeadProjection reports the lm_head: a MatMul or Gemm with the
// [hidden, vocab] weight (or its transpose) whose output is the vocabulary.
func (p *precision) isHeadProjection(n *ir.Node, lookupInit func(string) *ir.Tensor, prod func(string) *ir.Node) bool {
	if p.vocab == 0 || (n.OpType != "MatMul" && n.OpType != "Gemm") {
		return false
	}
	w, swap := n.Input(1), false
	if t := prod(w); t != nil && t.OpType == "Transpose" {
		w, swap = t.Input(0), true
	}
	t := lookupInit(w)
	if t == nil || len(t.Dims) != 2 || !p.weights[w] {
		return false
	}
	if n.OpType == "Gemm" && n.AttrInt("transB", 0) == 1 {
		swap = !swap
	}
	outDim := t.Dims[1]
	if swap {
		outDim = t.Dims[0]
	}
	return outDim == p.vocab
}

// rewrite retypes g's nodes in order; forced puts every node in float32
// (a sub-graph of the head). It returns g's type scope.
func (p *precision) rewrite(g *ir.Graph, outer *typeScope, forced bool) (*typeScope, error) {
	sc := newTypeScope(g, outer)
	if p.class == nil {
		p.class, p.head, p.cache, p.consts = map[string]valueClass{}, map[string]bool{}, map[*typeScope]map[string]string{}, map[string]*ir.Tensor{}
		p.castSrc = map[string]string{}
	}
	p.cache[sc] = map[string]string{}
	prodMap := map[string]*ir.Node{}
	for _, t := range g.Initializers {
		if t.DType == ir.Float32 && t.External == nil {
			p.consts[t.Name] = t
		}
	}
	for _, v := range g.Inputs {
		if v.Type != nil && v.Type.DType == ir.Float32 && outer != nil {
			p.class[v.Name] = activation
		}
	}
	lookupInit := func(v string) *ir.Tensor {
		if t := g.Initializer(v); t != nil {
			return t
		}
		return p.s.Model.Graph.Initializer(v)
	}
	prod := func(v string) *ir.Node { return prodMap[v] }
	nodes := g.Nodes
	var out []*ir.Node
	for _, n := range nodes {
		if err := p.node(g, sc, n, &out, forced, lookupInit, prod); err != nil {
			return nil, err
		}
		for _, o := range n.Outputs {
			prodMap[o] = n
		}
	}
	g.Nodes = out
	for _, vi := range g.ValueInfo {
		if dt := sc.of(vi.Name); vi.Type != nil && dt != ir.Undefined && vi.Type.DType != dt {
			vi.Type.DType = dt
		}
	}
	return sc, nil
}

func (p *precision) isFloat(dt ir.DType) bool { return dt == ir.Float32 || dt == p.low }

// classOf tells how a float32 value may change type.
func (p *precision) classOf(v string) valueClass {
	if c, ok := p.class[v]; ok {
		return c
	}
	if t, ok := p.consts[v]; ok {
		if p.fits(t) {
			return flexible
		}
		return aux
	}
	return activation
}

// fits reports whether every value of a float32 constant is finite in the
// low type (finfo(float32).min as a mask fill is not).
func (p *precision) fits(t *ir.Tensor) bool {
	if t.NumElements() > 1<<16 {
		return false
	}
	vals, err := t.Float64s()
	if err != nil {
		return false
	}
	limit := 65504.0
	if p.low == ir.BFloat16 {
		limit = 3.3e38
	}
	for _, v := range vals {
		if math.IsNaN(v) || math.Abs(v) > limit {
			return false
		}
	}
	return true
}

func (p *precision) node(g *ir.Graph, sc *typeScope, n *ir.Node, out *[]*ir.Node, forced bool,
	lookupInit func(string) *ir.Tensor, prod func(string) *ir.Node) error {
	emit := func(nn *ir.Node) { *out = append(*out, nn) }
	setTypes := func() error {
		ts, err := outputTypes(n, sc.of)
		if err != nil {
			return err
		}
		for i, o := range n.Outputs {
			sc.types[o] = ts[i]
		}
		return nil
	}
	inHead := forced
	for _, in := range append(append([]string(nil), n.Inputs...), ir.ImplicitInputs(n)...) {
		if p.head[in] {
			inHead = true
		}
	}
	markHead := func() {
		if inHead {
			for _, o := range n.Outputs {
				p.head[o] = true
			}
		}
	}
	if n.Domain != "" {
		for i, in := range n.Inputs {
			if sc.of(in) == p.low {
				n.Inputs[i] = p.want(sc, in, ir.Float32, out)
			}
		}
		emit(n)
		markHead()
		return setTypes()
	}
	switch n.OpType {
	case "Constant":
		if a := n.Attr("value"); a != nil && a.GetT().GetDataType() == int32(ir.Float32) && len(n.Outputs) == 1 {
			if t, err := ir.TensorFromPB(a.GetT(), ""); err == nil && t.External == nil {
				p.consts[n.Outputs[0]] = t
			}
		}
		emit(n)
		markHead()
		return setTypes()
	case "CastLike":
		to := sc.of(n.Input(1))
		if to == ir.Undefined {
			return fmt.Errorf("passes: %s: unknown target type", n)
		}
		n.OpType, n.Inputs, n.Attrs = "Cast", n.Inputs[:1], []*onnxpb.AttributeProto{ir.AttrInt("to", int64(to))}
		fallthrough
	case "Cast":
		to := ir.DType(n.AttrInt("to", 0))
		from := sc.of(n.Input(0))
		if to == ir.Float32 && !p.isFloat(from) {
			if from == ir.Bool {
				p.class[n.Outputs[0]] = flexible
			} else {
				p.class[n.Outputs[0]] = aux
			}
		} else if to == ir.Float32 && from == ir.Float32 {
			p.class[n.Outputs[0]] = p.classOf(n.Input(0))
		}
		if p.isFloat(to) && p.isFloat(from) {
			p.castSrc[n.Outputs[0]] = n.Input(0)
		}
		// A Cast to the type its input has is an Identity; a float
		// constant's Cast is the constant converted once.
		if _, isConst := p.consts[n.Input(0)]; from == to || (isConst && from == ir.Float32 && p.isFloat(to)) {
			n.Inputs[0] = p.want(sc, n.Input(0), to, out)
			n.OpType, n.Attrs = "Identity", nil
			delete(p.castSrc, n.Outputs[0])
		}
		emit(n)
		markHead()
		return setTypes()
	case "Loop", "If":
		return p.control(g, sc, n, out, inHead, setTypes)
	case "Pad":
		if dt := sc.of(n.Input(0)); p.s.Opts.Provider == kernels.CUDA && !p.isFloat(dt) && dt != ir.Float64 && dt != ir.Bool &&
			!p.table.Has("Pad", dt) && p.table.Has("Pad", ir.Float64) {
			return p.padInFloat64(sc, n, out, dt)
		}
	}

	var floatIns []int
	anyLow, allLowable, anyActivation := false, true, false
	for i, in := range n.Inputs {
		if in == "" {
			continue
		}
		switch dt := sc.of(in); {
		case dt == p.low:
			floatIns = append(floatIns, i)
			anyLow, anyActivation = true, true
		case dt == ir.Float32:
			floatIns = append(floatIns, i)
			c := p.classOf(in)
			if c != flexible {
				allLowable = false
			}
			if c == activation {
				anyActivation = true
			}
		}
	}
	if len(floatIns) == 0 {
		emit(n)
		markHead()
		if err := setTypes(); err != nil {
			return err
		}
		p.classify(n, sc, floatIns)
		return nil
	}
	target := ir.Float32
	switch {
	case n.OpType == "MatMul" || n.OpType == "Gemm":
		if !forced && anyActivation && p.table.Has(n.OpType, p.low) {
			target = p.low
		}
	case inHead || fp32Ops[n.OpType]:
	case anyLow && allLowable && p.table.Has(n.OpType, p.low):
		target = p.low
	}
	for _, i := range floatIns {
		if sc.of(n.Inputs[i]) != target {
			n.Inputs[i] = p.want(sc, n.Inputs[i], target, out)
		}
	}
	emit(n)
	if err := setTypes(); err != nil {
		return err
	}
	// MatMul and Gemm end the head region: the head's gradient leaves it
	// through the weight.
	if n.OpType == "MatMul" || n.OpType == "Gemm" {
		if !inHead && p.isHeadProjection(n, lookupInit, prod) {
			for _, o := range n.Outputs {
				p.head[o] = true
			}
		}
	} else {
		markHead()
	}
	p.classify(n, sc, floatIns)
	return nil
}

// moves are ops that only move, select, scale or negate values: flexible
// inputs (0/1 masks, constants that fit) give a flexible output, such as
// the LoRA gate s·[role_ids == k].
var moves = map[string]bool{"Unsqueeze": true, "Squeeze": true, "Reshape": true, "Expand": true, "Transpose": true,
	"Slice": true, "Gather": true, "Concat": true, "Identity": true, "Flatten": true, "Mul": true, "Neg": true}

// classify records the class of n's float32 outputs: aux when every float
// input is a constant or aux and the node reads no activation; flexible
// when it only moves flexible values.
func (p *precision) classify(n *ir.Node, sc *typeScope, floatIns []int) {
	c := aux
	if moves[n.OpType] && len(floatIns) > 0 {
		c = flexible
	}
	for _, i := range floatIns {
		switch {
		case sc.of(n.Inputs[i]) == p.low || p.classOf(n.Inputs[i]) == activation:
			c = activation
		case p.classOf(n.Inputs[i]) == aux && c == flexible:
			c = aux
		}
	}
	if len(floatIns) == 0 {
		// Shape-derived floats (ConstantOfShape, Range of ints): constants.
		c = aux
		if n.OpType == "ConstantOfShape" {
			c = flexible
			if a := n.Attr("value"); a != nil {
				if t, err := ir.TensorFromPB(a.GetT(), ""); err != nil || !p.fits(t) {
					c = aux
				}
			}
		}
	}
	for _, o := range n.Outputs {
		if sc.of(o) == ir.Float32 {
			p.class[o] = c
		}
	}
}

// want returns v as type dt, adding a Cast (or a converted constant) once.
func (p *precision) want(sc *typeScope, v string, dt ir.DType, out *[]*ir.Node) string {
	if sc.of(v) == dt {
		return v
	}
	if c, ok := p.cache[sc][v+"|"+dt.String()]; ok {
		return c
	}
	// A value cast from dt already: use its source, never cast back.
	if src, ok := p.castSrc[v]; ok && sc.of(src) == dt {
		return src
	}
	name := p.b.Unique(v + "/" + dt.String())
	if t, ok := p.consts[v]; ok && sc.of(v) == ir.Float32 {
		c := t.As(dt)
		c.Name = name
		p.s.Model.Graph.Initializers = append(p.s.Model.Graph.Initializers, c)
		root := sc
		for root.outer != nil {
			root = root.outer
		}
		root.types[name] = dt
		p.cache[sc][v+"|"+dt.String()] = name
		return name
	}
	cast := &ir.Node{Name: p.b.Unique(name + "/Cast"), OpType: "Cast", Inputs: []string{v}, Outputs: []string{name},
		Attrs: []*onnxpb.AttributeProto{ir.AttrInt("to", int64(dt))}}
	*out = append(*out, cast)
	p.castSrc[name] = v
	sc.types[name] = dt
	if p.head[v] {
		p.head[name] = true
	}
	if dt == ir.Float32 {
		p.class[name] = activation
	}
	p.cache[sc][v+"|"+dt.String()] = name
	return name
}

// control rewrites the sub-graphs of a Loop or If: outer values keep the
// types they have now, the bodies' outputs keep their declared types.
func (p *precision) control(g *ir.Graph, sc *typeScope, n *ir.Node, out *[]*ir.Node, inHead bool, setTypes func() error) error {
	for _, i := range subgraphs(n) {
		a := n.Attrs[i]
		body, err := ir.GraphFromProto(a.GetG(), "")
		if err != nil {
			return err
		}
		// Loop-carried values keep the type the body declares.
		if n.OpType == "Loop" {
			for j := 2; j < len(n.Inputs); j++ {
				if j < len(body.Inputs) && n.Inputs[j] != "" && body.Inputs[j].Type != nil && sc.of(n.Inputs[j]) != body.Inputs[j].Type.DType {
					n.Inputs[j] = p.want(sc, n.Inputs[j], body.Inputs[j].Type.DType, out)
				}
			}
		}
		bsc, err := p.rewrite(body, sc, inHead)
		if err != nil {
			return err
		}
		for _, o := range body.Outputs {
			if o.Type != nil && bsc.of(o.Name) != o.Type.DType && p.isFloat(bsc.of(o.Name)) {
				o.Name = p.want(bsc, o.Name, o.Type.DType, &body.Nodes)
			}
		}
		if err := ir.TopoSort(body); err != nil {
			return err
		}
		na, err := ir.AttrGraph(a.GetName(), body)
		if err != nil {
			return err
		}
		n.Attrs[i] = na
	}
	*out = append(*out, n)
	if inHead {
		for _, o := range n.Outputs {
			p.head[o] = true
		}
	}
	return setTypes()
}

// padInFloat64 pads an integer tensor the provider cannot pad as float64
// (exact for integers below 2⁵³).
func (p *precision) padInFloat64(sc *typeScope, n *ir.Node, out *[]*ir.Node, dt ir.DType) error {
	cast := func(v string, to ir.DType) string {
		name := p.b.Unique(v + "/" + to.String())
		*out = append(*out, &ir.Node{Name: p.b.Unique(name + "/Cast"), OpType: "Cast", Inputs: []string{v}, Outputs: []string{name},
			Attrs: []*onnxpb.AttributeProto{ir.AttrInt("to", int64(to))}})
		sc.types[name] = to
		return name
	}
	n.Inputs[0] = cast(n.Inputs[0], ir.Float64)
	if n.Input(2) != "" {
		n.Inputs[2] = cast(n.Inputs[2], ir.Float64)
	}
	res := n.Outputs[0]
	n.Outputs[0] = p.b.Unique(res + "/float64")
	sc.types[n.Outputs[0]] = ir.Float64
	*out = append(*out, n, &ir.Node{Name: p.b.Unique(res + "/Cast"), OpType: "Cast", Inputs: []string{n.Outputs[0]}, Outputs: []string{res},
		Attrs: []*onnxpb.AttributeProto{ir.AttrInt("to", int64(dt))}})
	sc.types[res] = dt
	return nil
}

// renameValues renames values of g (node inputs and outputs, graph
// outputs, reads inside sub-graphs).
func renameValues(g *ir.Graph, m map[string]string) error {
	if len(m) == 0 {
		return nil
	}
	for _, n := range g.Nodes {
		for i, in := range n.Inputs {
			if r, ok := m[in]; ok {
				n.Inputs[i] = r
			}
		}
		for i, o := range n.Outputs {
			if r, ok := m[o]; ok {
				n.Outputs[i] = r
			}
		}
		for _, i := range subgraphs(n) {
			renamePB(n.Attrs[i].GetG(), m)
		}
	}
	for _, o := range g.Outputs {
		if r, ok := m[o.Name]; ok {
			o.Name = r
		}
	}
	for _, vi := range g.ValueInfo {
		if r, ok := m[vi.Name]; ok {
			vi.Name = r
		}
	}
	return nil
}

func renamePB(g *onnxpb.GraphProto, m map[string]string) {
	for _, n := range g.GetNode() {
		for i, in := range n.Input {
			if r, ok := m[in]; ok {
				n.Input[i] = r
			}
		}
		for _, a := range n.GetAttribute() {
			if a.GetG() != nil {
				renamePB(a.GetG(), m)
			}
		}
	}
	for _, o := range g.GetOutput() {
		if r, ok := m[o.GetName()]; ok {
			o.Name = &r
		}
	}
}

// LowPrecisionBytes converts float32 little-endian bytes to dt (float16 or
// bfloat16), rounding to nearest even, appending to dst.
func LowPrecisionBytes(dst, src []byte, dt ir.DType) []byte {
	for i := 0; i+4 <= len(src); i += 4 {
		f := math.Float32frombits(binary.LittleEndian.Uint32(src[i:]))
		if dt == ir.Float64 { // Widen's weights: exact
			dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(float64(f)))
			continue
		}
		var h uint16
		if dt == ir.BFloat16 {
			h = float16.BFloat16FromFloat32(f)
		} else {
			h = float16.FromFloat32(f)
		}
		dst = binary.LittleEndian.AppendUint16(dst, h)
	}
	return dst
}
