package passes

import (
	"errors"
	"fmt"

	"github.com/dartc/dartc/ir"
)

// ErrAlreadyCompiled reports a graph that dartc has already rewritten.
var ErrAlreadyCompiled = errors.New("passes: graph is already compiled by dartc")

// CompiledMarker is the model metadata key dartc sets on what it emits.
const CompiledMarker = "dartc.compiled"

// AdapterName is the graph-input name of one adapter matrix ("A" or "B").
func AdapterName(module, matrix, role string) string {
	return fmt.Sprintf("%s.lora_%s.%s.weight", module, matrix, role)
}

// AdapterDType is the type adapters use for a backbone weight type: the
// backbone's own for float32 and float64, float32 for half types (the
// adapters, their optimizer state and the loss head stay in fp32).
func AdapterDType(weight ir.DType) ir.DType {
	if weight == ir.Float64 {
		return ir.Float64
	}
	return ir.Float32
}

// DualLoRA rewrites every matched target y = x·W (+b) into
//
//	y = x·W (+b) + Σ_k (((x·A_k) ⊙ g_k)·B_k),   g_k = s·[role_ids == k]
//
// with A_k [in, rank] and B_k [rank, out] added as graph inputs, and the
// int64 [batch, seq] input role_ids. The gate multiplies the rank-r
// intermediate, which equals gating the branch output (g is one scalar per
// position) at a fraction of the cost. A position's branch uses only its
// role's adapters, but gradients are not isolated by role: a later position
// attends to earlier ones, so its loss reaches the adapters of their roles
// too (the trainer's strict isolation runs one backward pass per role).
func DualLoRA(s *State) error { return dualLoRA(s, false) }

// DualLoRAStacked is DualLoRA with the roles' adapters concatenated, A =
// [A_0 … A_K] [in, K·rank] and B = [B_0; …; B_K] [K·rank, out], so that the
// sum over roles is one pair of products, ((x·A) ⊙ G)·B, with G the gates
// repeated rank times along the last axis: the activations are read once
// per target rather than once per role, in the forward and in the backward.
// The concatenation copies the adapters at every run, which costs less than
// a second pass over the activations when a run covers many positions
// (logprobs, train) but not in a decoding step of a few rows. The branches
// are recorded for MergeLoRAInputs, which shares the A side of targets that
// read one activation.
func DualLoRAStacked(s *State) error { return dualLoRA(s, true) }

func dualLoRA(s *State, stacked bool) error {
	g := s.Model.Graph
	if g.Input(RoleInput) != nil {
		return fmt.Errorf("%w: it already has a %s input; compile the original export instead", ErrAlreadyCompiled, RoleInput)
	}
	if _, ok := s.Model.MetadataValue(CompiledMarker); ok {
		return fmt.Errorf("%w (metadata %s); compile the original export instead", ErrAlreadyCompiled, CompiledMarker)
	}
	if len(s.Targets) == 0 {
		return fmt.Errorf("passes: no targets to adapt (run MatchTargets first)")
	}
	if s.Opts.Rank <= 0 || len(s.Opts.Roles) == 0 {
		return fmt.Errorf("passes: rank %d and %d roles: need rank ≥ 1 and at least one role", s.Opts.Rank, len(s.Opts.Roles))
	}
	ids := g.Input("input_ids")
	if ids == nil || ids.Type == nil || len(ids.Type.Dims) != 2 {
		return fmt.Errorf("passes: the graph has no input_ids [batch, seq] input to shape %s after", RoleInput)
	}
	b := s.Builder()
	b.Reserve(RoleInput)
	g.Inputs = append(g.Inputs, &ir.ValueInfo{
		Name: RoleInput, Type: ir.TensorType(ir.Int64, ids.Type.Dims...),
		Doc: "role of each position: the adapter whose tokens the position predicts (" + fmt.Sprint(s.Opts.Roles) + ")",
	})
	gates := &gateCache{s: s, g3: map[ir.DType][]string{}, g2: map[ir.DType][]string{}, s3: map[stackKey]string{}, s2: map[stackKey]string{}}
	s.gates = gates
	r := int64(s.Opts.Rank)
	for _, t := range s.Targets {
		adt := AdapterDType(t.Weight.DType)
		prefix := "/" + pathOf(t.Module) + "/lora"
		out := t.Node.Outputs[0]
		base := b.Unique(out + "/base")
		t.Node.Outputs[0] = base

		x := t.Node.Inputs[0]
		if t.Weight.DType != adt {
			x = b.Op(prefix+"/Cast_x", "Cast", []string{x}, ir.AttrInt("to", int64(adt)))
		}
		var as, bs []string
		for _, role := range s.Opts.Roles {
			an, bn := AdapterName(t.Module, "A", role), AdapterName(t.Module, "B", role)
			b.Reserve(an, bn)
			in := []*ir.ValueInfo{
				{Name: an, Type: ir.TensorType(adt, ir.Dims(t.In, r)...), Doc: "LoRA A of " + t.Module + " for role " + role},
				{Name: bn, Type: ir.TensorType(adt, ir.Dims(r, t.Out)...), Doc: "LoRA B of " + t.Module + " for role " + role},
			}
			g.Inputs = append(g.Inputs, in...)
			s.AdapterInputs = append(s.AdapterInputs, in...)
			as, bs = append(as, an), append(bs, bn)
		}
		var delta string
		if stacked {
			a, bm := as[0], bs[0]
			if len(as) > 1 {
				a = b.Op(prefix+"/A/Concat", "Concat", as, ir.AttrInt("axis", 1))
				bm = b.Op(prefix+"/B/Concat", "Concat", bs, ir.AttrInt("axis", 0))
			}
			xa := b.Op(prefix+"/A/MatMul", "MatMul", []string{x, a})
			xg := b.Op(prefix+"/gate/Mul", "Mul", []string{xa, gates.stacked(adt, t.Form == FormGemm, 1)})
			delta = b.Op(prefix+"/B/MatMul", "MatMul", []string{xg, bm})
			s.stacked = append(s.stacked, &stackedBranch{target: t, dtype: adt, src: t.Node.Inputs[0], x: x, as: as, a: a, aProduct: xa, gated: xg, delta: delta})
		} else {
			for k, role := range s.Opts.Roles {
				p := prefix + "/" + role
				xa := b.Op(p+"/A/MatMul", "MatMul", []string{x, as[k]})
				xg := b.Op(p+"/gate/Mul", "Mul", []string{xa, gates.role(adt, t.Form == FormGemm, k)})
				br := b.Op(p+"/B/MatMul", "MatMul", []string{xg, bs[k]})
				if delta == "" {
					delta = br
				} else {
					delta = b.Op(fmt.Sprintf("%s/Add_%d", prefix, k-1), "Add", []string{delta, br})
				}
			}
		}
		if t.Weight.DType != adt {
			delta = b.Op(prefix+"/Cast_delta", "Cast", []string{delta}, ir.AttrInt("to", int64(t.Weight.DType)))
		}
		b.Add(&ir.Node{Name: prefix + "/Add", OpType: "Add", Inputs: []string{base, delta}, Outputs: []string{out},
			Doc: fmt.Sprintf("frozen %s plus dual gated LoRA (rank %d, scale %g)", t.Module, s.Opts.Rank, s.Opts.Scale())})
	}
	s.Model.SetMetadata(CompiledMarker, "dual-lora")
	return ir.TopoSort(g)
}

func pathOf(module string) string {
	out := []byte(module)
	// model.layers.0.self_attn.q_proj → model/layers.0/self_attn/q_proj
	for i := 0; i < len(out); i++ {
		if out[i] == '.' && !(i+1 < len(out) && out[i+1] >= '0' && out[i+1] <= '9') {
			out[i] = '/'
		}
	}
	return string(out)
}

// gateCache builds each role's gate once per dtype: s·[role_ids == k] as
// [batch, seq, 1], and as [batch·seq, 1] for 2-D (Gemm) activations.
type gateCache struct {
	s      *State
	g3, g2 map[ir.DType][]string
	s3, s2 map[stackKey]string // stacked
	ids    string              // role_ids as [batch, seq, 1], for the stacked gates
}

// stackKey names a stacked gate: its type and how many targets' stacked
// adapters it spans.
type stackKey struct {
	dt     ir.DType
	copies int
}

func (c *gateCache) role(dt ir.DType, flat bool, k int) string {
	b := c.s.Builder()
	if c.g3[dt] == nil {
		for role := range c.s.Opts.Roles {
			p := fmt.Sprintf("/lora/gate/%s/%s", c.s.Opts.Roles[role], dt)
			kk := b.Const(ir.NewScalar(p+"/role", ir.Int64, float64(role)))
			eq := b.Op(p+"/Equal", "Equal", []string{RoleInput, kk})
			f := b.Op(p+"/Cast", "Cast", []string{eq}, ir.AttrInt("to", int64(dt)))
			sc := b.Op(p+"/Mul", "Mul", []string{f, b.Scalar(p+"/scale", dt, c.s.Opts.Scale())})
			c.g3[dt] = append(c.g3[dt], unsqueezeLast(c.s, p+"/Unsqueeze", sc))
		}
	}
	if !flat {
		return c.g3[dt][k]
	}
	if c.g2[dt] == nil {
		for role, g3 := range c.g3[dt] {
			p := fmt.Sprintf("/lora/gate/%s/%s/flat", c.s.Opts.Roles[role], dt)
			c.g2[dt] = append(c.g2[dt], b.Op(p, "Reshape", []string{g3, b.Ints(p+"/shape", -1, 1)}))
		}
	}
	return c.g2[dt][k]
}

// stacked is G = s·[role_ids == k(j)] as [batch, seq, copies·K·rank],
// with k(j) = (j mod K·rank) / rank the role of column j of copies
// side-by-side stacked adapters, and as [batch·seq, copies·K·rank] for 2-D
// (Gemm) activations.
func (c *gateCache) stacked(dt ir.DType, flat bool, copies int) string {
	b := c.s.Builder()
	key := stackKey{dt, copies}
	width := int64(copies * len(c.s.Opts.Roles) * c.s.Opts.Rank)
	name := "stacked"
	if copies > 1 {
		name = fmt.Sprintf("stacked%d", copies)
	}
	if c.s3[key] == "" {
		p := fmt.Sprintf("/lora/gate/%s/%s", name, dt)
		roleOf := make([]int64, 0, width)
		for range copies {
			for k := range c.s.Opts.Roles {
				for range c.s.Opts.Rank {
					roleOf = append(roleOf, int64(k))
				}
			}
		}
		kk := b.Const(ir.NewTensorI64(p+"/role_of_column", []int64{width}, roleOf))
		if c.ids == "" {
			c.ids = unsqueezeLast(c.s, "/lora/gate/stacked/Unsqueeze", RoleInput)
		}
		eq := b.Op(p+"/Equal", "Equal", []string{c.ids, kk})
		f := b.Op(p+"/Cast", "Cast", []string{eq}, ir.AttrInt("to", int64(dt)))
		c.s3[key] = b.Op(p+"/Mul", "Mul", []string{f, b.Scalar(p+"/scale", dt, c.s.Opts.Scale())})
	}
	if !flat {
		return c.s3[key]
	}
	if c.s2[key] == "" {
		p := fmt.Sprintf("/lora/gate/%s/%s/flat", name, dt)
		c.s2[key] = b.Op(p, "Reshape", []string{c.s3[key], b.Ints(p+"/shape", -1, width)})
	}
	return c.s2[key]
}

// unsqueezeLast appends a trailing axis, with axes as an input from opset
// 13 and as an attribute before.
func unsqueezeLast(s *State, name, x string) string {
	b := s.Builder()
	if s.Model.OpsetVersion("") >= 13 {
		return b.Op(name, "Unsqueeze", []string{x, b.Ints(name+"/axes", -1)})
	}
	return b.Op(name, "Unsqueeze", []string{x}, ir.AttrInts("axes", -1))
}
