package ir

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/dartc/dartc/ir/onnxpb"
)

// Dump writes a deterministic text form of m for golden tests and reviews:
// one line per opset, input, initializer (dtype, dims, inline or external
// reference, never the data), node and output, in graph order.
func Dump(m *Model) string {
	var b strings.Builder
	fmt.Fprintf(&b, "model ir_version=%d", m.IRVersion)
	ops := append([]Opset(nil), m.Opsets...)
	sort.Slice(ops, func(i, j int) bool { return ops[i].Domain < ops[j].Domain })
	for _, o := range ops {
		d := o.Domain
		if d == "" {
			d = "ai.onnx"
		}
		fmt.Fprintf(&b, " %s:%d", d, o.Version)
	}
	b.WriteByte('\n')
	for _, f := range m.Functions {
		fmt.Fprintf(&b, "function %s:%s(%s) -> (%s) nodes=%d\n", f.GetDomain(), f.GetName(),
			strings.Join(f.Input, ", "), strings.Join(f.Output, ", "), len(f.Node))
	}
	DumpGraph(&b, m.Graph)
	return b.String()
}

// DumpGraph writes the text form of one graph.
func DumpGraph(b *strings.Builder, g *Graph) {
	for _, v := range g.Inputs {
		fmt.Fprintf(b, "input %s: %s\n", v.Name, v.Type)
	}
	for _, t := range g.Initializers {
		fmt.Fprintf(b, "init %s: %s%v", t.Name, t.DType, t.Dims)
		if t.External != nil {
			fmt.Fprintf(b, " external(%s@%d+%d)", t.External.Location, t.External.Offset, t.External.Length)
		} else if t.NumElements() <= 4 {
			if vals, err := t.Float64s(); err == nil {
				fmt.Fprintf(b, " = %v", formatFloats(vals))
			}
		}
		b.WriteByte('\n')
	}
	for _, n := range g.Nodes {
		op := n.OpType
		if n.Domain != "" {
			op = n.Domain + ":" + op
		}
		fmt.Fprintf(b, "node %s: (%s) = %s(%s)", n.Name, strings.Join(n.Outputs, ", "), op, strings.Join(n.Inputs, ", "))
		if len(n.Attrs) > 0 {
			parts := make([]string, 0, len(n.Attrs))
			for _, a := range n.Attrs {
				parts = append(parts, a.GetName()+"="+FormatAttr(a))
			}
			sort.Strings(parts)
			fmt.Fprintf(b, " {%s}", strings.Join(parts, ", "))
		}
		b.WriteByte('\n')
	}
	for _, v := range g.Outputs {
		fmt.Fprintf(b, "output %s: %s\n", v.Name, v.Type)
	}
}

func formatFloats(v []float64) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatFloat(x, 'g', 6, 64)
	}
	return "[" + strings.Join(s, " ") + "]"
}

// FormatAttr renders an attribute value compactly.
func FormatAttr(a *onnxpb.AttributeProto) string {
	switch a.GetType() {
	case onnxpb.AttributeProto_FLOAT:
		return strconv.FormatFloat(float64(a.GetF()), 'g', -1, 32)
	case onnxpb.AttributeProto_INT:
		return strconv.FormatInt(a.GetI(), 10)
	case onnxpb.AttributeProto_STRING:
		return strconv.Quote(string(a.GetS()))
	case onnxpb.AttributeProto_INTS:
		return fmt.Sprint(a.GetInts())
	case onnxpb.AttributeProto_FLOATS:
		return fmt.Sprint(a.GetFloats())
	case onnxpb.AttributeProto_STRINGS:
		s := make([]string, len(a.GetStrings()))
		for i, x := range a.GetStrings() {
			s[i] = strconv.Quote(string(x))
		}
		return "[" + strings.Join(s, " ") + "]"
	case onnxpb.AttributeProto_TENSOR:
		t := a.GetT()
		s := fmt.Sprintf("tensor(%s%v", DType(t.GetDataType()), t.Dims)
		if tt, err := TensorFromPB(t, ""); err == nil && tt.NumElements() <= 8 {
			if v, err := tt.Float64s(); err == nil && !hasNaN(v) {
				s += " " + formatFloats(v)
			}
		}
		return s + ")"
	case onnxpb.AttributeProto_GRAPH:
		return fmt.Sprintf("graph(%s, %d nodes)", a.GetG().GetName(), len(a.GetG().Node))
	}
	return a.GetType().String()
}

func hasNaN(v []float64) bool {
	for _, x := range v {
		if math.IsNaN(x) {
			return true
		}
	}
	return false
}
