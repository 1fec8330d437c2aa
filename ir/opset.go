package ir

import (
	"fmt"
	"strings"
)

// opSince is the default-domain opset that introduced each op dartc's
// passes emit or meet in exported decoders, where it is later than 13.
var opSince = map[string]int64{
	"Trilu": 14, "CastLike": 15, "DFT": 17, "STFT": 17, "LayerNormalization": 17,
	"GroupNormalization": 18, "BitwiseAnd": 18, "BitwiseOr": 18, "BitwiseXor": 18, "BitwiseNot": 18,
	"Mish": 18, "CenterCropPad": 18, "Col2Im": 18, "Gelu": 20, "AffineGrid": 20, "ImageDecoder": 20,
	"RMSNormalization": 23, "RotaryEmbedding": 23, "Attention": 23,
}

// attrRule bounds the opsets at which an attribute (or an attribute value)
// is part of an op's schema: [since, until), until 0 meaning still valid.
type attrRule struct {
	op, attr, value string
	since, until    int64
}

var attrRules = []attrRule{
	{op: "ScatterElements", attr: "reduction", since: 16},
	{op: "ScatterND", attr: "reduction", since: 16},
	{op: "ScatterElements", attr: "reduction", value: "max", since: 18},
	{op: "ScatterElements", attr: "reduction", value: "min", since: 18},
	{op: "ScatterND", attr: "reduction", value: "max", since: 18},
	{op: "ScatterND", attr: "reduction", value: "min", since: 18},
	{op: "Shape", attr: "start", since: 15},
	{op: "Shape", attr: "end", since: 15},
	{op: "Reshape", attr: "allowzero", since: 14},
	{op: "Split", attr: "num_outputs", since: 18},
	{op: "Split", attr: "split", until: 13},
	{op: "Squeeze", attr: "axes", until: 13},
	{op: "Unsqueeze", attr: "axes", until: 13},
	{op: "ReduceSum", attr: "axes", until: 13},
	{op: "Pad", attr: "pads", until: 11},
	{op: "Clip", attr: "min", until: 11},
	{op: "Clip", attr: "max", until: 11},
}

// reduceOps took their axes as an attribute until opset 18 (ReduceSum
// until 13) and as a second input from then on.
var reduceOps = map[string]int64{
	"ReduceSum": 13, "ReduceMean": 18, "ReduceMax": 18, "ReduceMin": 18, "ReduceProd": 18,
	"ReduceL1": 18, "ReduceL2": 18, "ReduceLogSum": 18, "ReduceLogSumExp": 18, "ReduceSumSquare": 18,
}

// inputSince is the opset from which an op takes its optional input i.
var inputSince = map[string]struct {
	index int
	since int64
}{
	"Squeeze": {1, 13}, "Unsqueeze": {1, 13}, "Split": {1, 13}, "Pad": {3, 18},
}

// CheckOpset verifies that every default-domain node of g is part of the
// schema at the given opset, for the ops and attributes in dartc's tables:
// ops newer than the opset, attributes added or removed since (the
// reduction of ScatterElements needs 16, the axes attribute of ReduceMean
// is gone at 18). ONNX Runtime refuses such graphs when it loads them.
func CheckOpset(g *Graph, opset int64) error {
	var errs []string
	add := func(n *Node, format string, args ...any) {
		if len(errs) < 20 {
			errs = append(errs, fmt.Sprintf("%s: %s", n, fmt.Sprintf(format, args...)))
		}
	}
	for _, n := range g.Nodes {
		if n.Domain != "" && n.Domain != "ai.onnx" {
			continue
		}
		if since, ok := opSince[n.OpType]; ok && opset < since {
			add(n, "%s needs opset ≥ %d, the graph imports %d", n.OpType, since, opset)
		}
		for _, r := range attrRules {
			if r.op != n.OpType {
				continue
			}
			a := n.Attr(r.attr)
			if a == nil || (r.value != "" && string(a.GetS()) != r.value) {
				continue
			}
			what := "attribute " + r.attr
			if r.value != "" {
				what += "=" + r.value
			}
			if r.since > 0 && opset < r.since {
				add(n, "%s needs opset ≥ %d, the graph imports %d", what, r.since, opset)
			}
			if r.until > 0 && opset >= r.until {
				add(n, "%s was removed at opset %d (the graph imports %d)", what, r.until, opset)
			}
		}
		if since, ok := reduceOps[n.OpType]; ok {
			if n.Attr("axes") != nil && opset >= since {
				add(n, "attribute axes was replaced by an input at opset %d (the graph imports %d)", since, opset)
			}
			if n.Input(1) != "" && opset < since {
				add(n, "axes as an input needs opset ≥ %d, the graph imports %d", since, opset)
			}
		}
		if r, ok := inputSince[n.OpType]; ok && n.Input(r.index) != "" && opset < r.since {
			add(n, "input %d needs opset ≥ %d, the graph imports %d", r.index, r.since, opset)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: not valid at opset %d:\n  %s", ErrInvalid, opset, strings.Join(errs, "\n  "))
	}
	return nil
}
