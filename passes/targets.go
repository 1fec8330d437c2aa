package passes

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/dartc/dartc/ir"
)

// DefaultTargets are the Qwen2 linears DART adapts.
var DefaultTargets = []string{"q", "k", "v", "o", "gate", "up", "down"}

// ErrNoTarget reports a requested target kind that matches no linear.
var ErrNoTarget = errors.New("passes: no matching target")

// Linear forms, as the exporters write them.
const (
	// FormMatMul is MatMul(x, W[in,out]) with a pre-transposed initializer
	// (TorchScript / optimum, onnxruntime-genai).
	FormMatMul = "matmul"
	// FormMatMulTranspose is MatMul(x, Transpose(W[out,in])) (dynamo).
	FormMatMulTranspose = "matmul-transpose"
	// FormGemm is Gemm(x, W[out,in], transB=1) on 2-D activations.
	FormGemm = "gemm"
)

// Target is a matched linear layer.
type Target struct {
	Module string // normalized HF module path, e.g. model.layers.0.self_attn.q_proj
	Layer  int
	Kind   string // q, k, v, o, gate, up, down, qkv
	Form   string
	Node   *ir.Node
	Weight *ir.Tensor // the frozen W, as stored
	In     int64
	Out    int64
	// How the module was identified: node-name, name-scopes or initializer.
	Evidence string
}

var (
	layerRe = regexp.MustCompile(`(?:^|[./])layers[./](\d+)(?:[./]|$)`)
	projRe  = regexp.MustCompile(`(?:^|[./])(q|k|v|o|qkv|gate|up|down)_proj(?:[./]|$)`)
	quoted  = regexp.MustCompile(`'([^']*)'|"([^"]*)"`)
)

// moduleFromPath finds layer and projection kind in a module path written
// with '/' (node names) or '.' (scopes, initializer names).
func moduleFromPath(path string) (layer int, kind string, ok bool) {
	lm := layerRe.FindStringSubmatch(path)
	pm := projRe.FindAllStringSubmatch(path, -1)
	if lm == nil || pm == nil {
		return 0, "", false
	}
	l, err := strconv.Atoi(lm[1])
	if err != nil {
		return 0, "", false
	}
	return l, pm[len(pm)-1][1], true
}

// ModuleName is the HF module path of a projection.
func ModuleName(layer int, kind string) string {
	parent := "self_attn"
	switch kind {
	case "gate", "up", "down":
		parent = "mlp"
	}
	return fmt.Sprintf("model.layers.%d.%s.%s_proj", layer, parent, kind)
}

// nodeModule identifies the module of a linear node from, in order, its
// name, its pkg.torch.onnx.name_scopes metadata, or the weight initializer's
// name — the last only because the node's structure already matched.
func nodeModule(n *ir.Node, weightName string) (layer int, kind, evidence string, ok bool) {
	name := strings.TrimPrefix(n.Name, "/")
	if i := strings.LastIndex(name, "/"); i > 0 {
		if l, k, ok := moduleFromPath(name[:i+1]); ok {
			return l, k, "node-name", true
		}
	}
	if v, has := n.MetadataValue("pkg.torch.onnx.name_scopes"); has {
		// The innermost module scope names the projection; the exporter may
		// append the functional op ('linear') after it.
		scopes := quoted.FindAllStringSubmatch(v, -1)
		for i := len(scopes) - 1; i >= 0; i-- {
			s := scopes[i][1] + scopes[i][2]
			if l, k, ok := moduleFromPath(s + "."); ok {
				return l, k, "name-scopes", true
			}
		}
	}
	if weightName != "" {
		if l, k, ok := moduleFromPath(weightName); ok {
			return l, k, "initializer", true
		}
	}
	return 0, "", "", false
}

// MatchTargets finds every linear of the requested kinds in all three
// exporter forms and packed qkv_proj. A requested kind that matches nothing
// is an error, as is a target stored in a form dartc cannot adapt.
func MatchTargets(s *State) error {
	g := s.Model.Graph
	want := map[string]bool{}
	for _, k := range s.Opts.Targets {
		switch k {
		case "q", "k", "v", "o", "gate", "up", "down":
			want[k] = true
		default:
			return fmt.Errorf("passes: unknown target %q (choose from %s)", k, strings.Join(DefaultTargets, ","))
		}
	}
	prod := producers(g)
	inits := make(map[string]*ir.Tensor, len(g.Initializers))
	for _, t := range g.Initializers {
		inits[t.Name] = t
	}
	found := map[string]bool{}
	s.Targets = nil
	for _, n := range g.Nodes {
		if n.Domain == "com.microsoft" && n.OpType == "MatMulNBits" {
			if l, k, _, ok := nodeModule(n, ""); ok && (want[k] || k == "qkv") {
				return fmt.Errorf("passes: %s (layer %d %s_proj) is a 4-bit MatMulNBits: dartc adapts float weights only; export the model in float32 or float16", n, l, k)
			}
			continue
		}
		t, err := matchLinear(n, prod, inits)
		if err != nil {
			return err
		}
		if t == nil {
			continue
		}
		use := want[t.Kind] || (t.Kind == "qkv" && (want["q"] || want["k"] || want["v"]))
		if !use {
			continue
		}
		t.Module = ModuleName(t.Layer, t.Kind)
		s.Targets = append(s.Targets, t)
		if t.Kind == "qkv" {
			found["q"], found["k"], found["v"] = true, true, true
		} else {
			found[t.Kind] = true
		}
	}
	var missing []string
	for k := range want {
		if !found[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return fmt.Errorf("%w: no linear layer matched target(s) %s; matched %d target(s). dartc recognizes Qwen2 projections (q/k/v/o/gate/up/down_proj under model.layers.N) by node name, pkg.torch.onnx.name_scopes or weight name; pass --targets to choose others",
			ErrNoTarget, strings.Join(missing, ","), len(s.Targets))
	}
	seen := map[string]bool{}
	for _, t := range s.Targets {
		if seen[t.Module] {
			return fmt.Errorf("passes: module %s matched twice (second: %s); the graph is ambiguous", t.Module, t.Node)
		}
		seen[t.Module] = true
	}
	return nil
}

// matchLinear recognizes one linear node, or returns nil.
func matchLinear(n *ir.Node, prod map[string]*ir.Node, inits map[string]*ir.Tensor) (*Target, error) {
	if n.Domain != "" {
		return nil, nil
	}
	var w *ir.Tensor
	var form string
	var in, out int64
	switch n.OpType {
	case "MatMul":
		if len(n.Inputs) != 2 {
			return nil, nil
		}
		if t := inits[n.Inputs[1]]; t != nil && len(t.Dims) == 2 {
			w, form, in, out = t, FormMatMul, t.Dims[0], t.Dims[1]
		} else if p := prod[n.Inputs[1]]; p != nil && p.OpType == "Transpose" && p.Domain == "" {
			t := inits[p.Input(0)]
			perm := p.AttrInts("perm")
			if t == nil || len(t.Dims) != 2 || !(perm == nil || (len(perm) == 2 && perm[0] == 1 && perm[1] == 0)) {
				return nil, nil
			}
			w, form, in, out = t, FormMatMulTranspose, t.Dims[1], t.Dims[0]
		} else {
			return nil, nil
		}
	case "Gemm":
		t := inits[n.Input(1)]
		if t == nil || len(t.Dims) != 2 || n.AttrInt("transA", 0) != 0 {
			return nil, nil
		}
		if n.AttrInt("transB", 0) == 1 {
			in, out = t.Dims[1], t.Dims[0]
		} else {
			in, out = t.Dims[0], t.Dims[1]
		}
		w, form = t, FormGemm
	default:
		return nil, nil
	}
	layer, kind, evidence, ok := nodeModule(n, w.Name)
	if !ok {
		return nil, nil
	}
	if !w.DType.IsFloat() {
		return nil, fmt.Errorf("passes: %s (layer %d %s_proj) has a %s weight; dartc adapts float weights only", n, layer, kind, w.DType)
	}
	return &Target{Layer: layer, Kind: kind, Form: form, Node: n, Weight: w, In: in, Out: out, Evidence: evidence}, nil
}
