package leas

import (
	"fmt"

	"github.com/dartc/dartc/peft"
	"github.com/dartc/dartc/safetensors"
)

// Role slot names of the dual-adapter graph (DESIGN.md §3).
const (
	ReasonRole = "reason"
	ToolRole   = "tool"
)

// Slots returns, for configuration c, which trained model's adapter fills
// the reasoning slot and which fills the tool slot of the dual-adapter
// graph. Base means zeros: the slot is switched off and those positions run
// the base model.
func Slots(c Config) (reason, tool Config) {
	switch c {
	case Reas, Tool, Unified:
		return c, c // a single-adapter model applies its adapter on every token
	case HTool:
		return Base, Tool // reasoning by the base, tool tokens by M_Tool
	case HReas:
		return Reas, Base // reasoning by M_Reas, tool tokens by the base
	default:
		return Base, Base
	}
}

// Assemble builds the dual-slot adapter tensors that evaluate configuration
// c. trained maps M_Reas, M_Tool and M_Unified to their adapter files (each
// in the dual layout, <module>.lora_{A,B}.<role>.weight); a slot taken from
// model M gets M's tensor of the same name, a Base slot gets zeros of the
// same dtype and shape. The result lists tensors in the order of template,
// which is any of the trained files (they must share names and shapes).
func Assemble(c Config, trained map[Config]*safetensors.File) ([]safetensors.Tensor, error) {
	reason, tool := Slots(c)
	var template *safetensors.File
	for _, m := range []Config{Unified, Reas, Tool} {
		if f := trained[m]; f != nil {
			template = f
			break
		}
	}
	if template == nil {
		return nil, fmt.Errorf("leas: assemble %v: no trained adapter file given", c)
	}
	out := make([]safetensors.Tensor, 0, len(template.Tensors))
	for _, t := range template.Tensors {
		n, ok := peft.ParseAdapterName(t.Name)
		if !ok {
			return nil, fmt.Errorf("leas: assemble %v: tensor %q is not named <module>.lora_{A,B}.<role>.weight", c, t.Name)
		}
		var from Config
		switch n.Role {
		case ReasonRole:
			from = reason
		case ToolRole:
			from = tool
		default:
			return nil, fmt.Errorf("leas: assemble %v: tensor %q has role %q, want %s or %s", c, t.Name, n.Role, ReasonRole, ToolRole)
		}
		if from == Base {
			out = append(out, safetensors.Tensor{Name: t.Name, DType: t.DType, Shape: t.Shape, Data: make([]byte, len(t.Data))})
			continue
		}
		f := trained[from]
		if f == nil {
			return nil, fmt.Errorf("leas: assemble %v: needs the adapter of %v, which was not given", c, from)
		}
		src, err := f.Get(t.Name)
		if err != nil {
			return nil, fmt.Errorf("leas: assemble %v from %v: %w", c, from, err)
		}
		if src.DType != t.DType || fmt.Sprint(src.Shape) != fmt.Sprint(t.Shape) {
			return nil, fmt.Errorf("leas: assemble %v: %s is %s %v in %v but %s %v in the template", c, t.Name, src.DType, src.Shape, from, t.DType, t.Shape)
		}
		out = append(out, src)
	}
	return out, nil
}
