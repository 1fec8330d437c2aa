package qwen2

import (
	"fmt"
	"strconv"
	"strings"
)

// TargetKind names one of the seven linear projections of a decoder layer.
type TargetKind int

// The target kinds in the order of a decoder layer's forward pass.
const (
	TargetQ TargetKind = iota
	TargetK
	TargetV
	TargetO
	TargetGate
	TargetUp
	TargetDown
)

var targetInfo = [...]struct{ short, block, module string }{
	TargetQ:    {"q", "self_attn", "q_proj"},
	TargetK:    {"k", "self_attn", "k_proj"},
	TargetV:    {"v", "self_attn", "v_proj"},
	TargetO:    {"o", "self_attn", "o_proj"},
	TargetGate: {"gate", "mlp", "gate_proj"},
	TargetUp:   {"up", "mlp", "up_proj"},
	TargetDown: {"down", "mlp", "down_proj"},
}

// TargetKinds returns all kinds in forward order.
func TargetKinds() []TargetKind {
	return []TargetKind{TargetQ, TargetK, TargetV, TargetO, TargetGate, TargetUp, TargetDown}
}

// String is the short name used on the command line (q, k, v, o, gate, up, down).
func (k TargetKind) String() string {
	if k < 0 || int(k) >= len(targetInfo) {
		return "TargetKind(" + strconv.Itoa(int(k)) + ")"
	}
	return targetInfo[k].short
}

// Block is the sub-module holding the projection: "self_attn" or "mlp".
func (k TargetKind) Block() string { return targetInfo[k].block }

// Module is the projection's attribute name, e.g. "q_proj".
func (k TargetKind) Module() string { return targetInfo[k].module }

// ParseTargetKind accepts a short name ("q") or a module name ("q_proj").
func ParseTargetKind(s string) (TargetKind, error) {
	for i, t := range targetInfo {
		if s == t.short || s == t.module {
			return TargetKind(i), nil
		}
	}
	return 0, fmt.Errorf("qwen2: unknown target %q (want one of q, k, v, o, gate, up, down)", s)
}

// ParseTargetKinds parses a comma-separated list such as "q,k,v,o".
func ParseTargetKinds(list string) ([]TargetKind, error) {
	var kinds []TargetKind
	seen := map[TargetKind]bool{}
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		k, err := ParseTargetKind(f)
		if err != nil {
			return nil, err
		}
		if !seen[k] {
			seen[k] = true
			kinds = append(kinds, k)
		}
	}
	if len(kinds) == 0 {
		return nil, fmt.Errorf("qwen2: empty target list %q", list)
	}
	return kinds, nil
}

// ModulePath is the Hugging Face module path of a layer's projection, e.g.
// model.layers.3.self_attn.q_proj.
func ModulePath(layer int, k TargetKind) string {
	return "model.layers." + strconv.Itoa(layer) + "." + k.Block() + "." + k.Module()
}

// NodeScope is the TorchScript exporter's node-name prefix for the same
// module, e.g. /model/layers.3/self_attn/q_proj.
func NodeScope(layer int, k TargetKind) string {
	return "/model/layers." + strconv.Itoa(layer) + "/" + k.Block() + "/" + k.Module()
}

// ParseModulePath parses a module path as ModulePath writes it, optionally
// followed by ".weight" or ".bias".
func ParseModulePath(name string) (layer int, kind TargetKind, err error) {
	bad := func(why string) (int, TargetKind, error) {
		return 0, 0, fmt.Errorf("qwen2: module path %q: %s (want model.layers.N.self_attn.{q,k,v,o}_proj or model.layers.N.mlp.{gate,up,down}_proj)", name, why)
	}
	rest, ok := strings.CutPrefix(name, "model.layers.")
	if !ok {
		return bad("does not start with model.layers.")
	}
	rest = strings.TrimSuffix(strings.TrimSuffix(rest, ".weight"), ".bias")
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return bad("wrong number of components")
	}
	n, convErr := strconv.Atoi(parts[0])
	if convErr != nil || n < 0 || strconv.Itoa(n) != parts[0] {
		return bad("layer index is not a non-negative integer")
	}
	for i, t := range targetInfo {
		if parts[1] == t.block && parts[2] == t.module {
			return n, TargetKind(i), nil
		}
	}
	return bad("unknown projection " + parts[1] + "." + parts[2])
}
