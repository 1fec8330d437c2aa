package passes

import (
	"math"
	"slices"

	"github.com/dartc/dartc/ir"
)

// RotateHalfAsSwap rewrites rotary embeddings' rotate_half, as both
// exporters write it once slices-to-split has run —
//
//	x1, x2 = Split(x, [h, h], axis=-1);  r = Concat(Neg(x2), x1, axis=-1)
//
// — as one reversal of x's two halves, r = swap(x)·[−1…, 1…], where swap is
// a Slice with step −1 over a [.., 2, h] view of x (Reshapes are views).
// When r only feeds a Mul (by the sine table), the sign moves onto the
// other factor, which every layer shares: Mul(swap(x), sin·[−1…, 1…]).
// The forward is one copy instead of a Split, a Neg and a Concat (three
// passes, two of them single-threaded in ONNX Runtime), and so is the
// backward: the gradient of a reversal is the same reversal, where the
// Concat's was two Slices and the Split's a Concat.
func RotateHalfAsSwap(s *State) error {
	g := s.Model.Graph
	if s.Model.OpsetVersion("") < 13 { // Split with sizes as an input
		return nil
	}
	si, dt := inferShapes(g), inferDTypes(g)
	prod, uses, isOutput := producers(g), consumers(g), outputNames(g)
	b := s.Builder()
	drop := map[*ir.Node]bool{}
	for _, cat := range slices.Clone(g.Nodes) {
		x, h, ok := rotateHalfOf(cat, prod, si)
		if !ok {
			continue
		}
		t, okT := dt[x]
		if !okT || (t != ir.Float32 && t != ir.Float64) {
			continue
		}
		rank := len(si.dims[x])
		tag := nodeTag(cat) + "/swap"
		view := make([]int64, rank+1) // [0 …, 2, h]: the leading dims copied
		view[rank-1], view[rank] = 2, h
		flat := make([]int64, rank) // [0 …, 2h]
		flat[rank-1] = 2 * h
		halves := b.Op(tag+"/halves", "Reshape", []string{x, b.Ints(tag+"/halves/shape", view...)})
		swapped := b.Op(tag+"/Slice", "Slice", []string{halves, b.Ints(tag+"/start", -1), b.Ints(tag+"/end", math.MinInt64),
			b.Ints(tag+"/axis", int64(rank-1)), b.Ints(tag+"/step", -1)})
		swapped = b.Op(tag+"/flat", "Reshape", []string{swapped, b.Ints(tag+"/flat/shape", flat...)})
		sign := b.Const(signTensor(tag+"/sign", t, h))
		r := cat.Outputs[0]
		if us := uses[r]; len(us) == 1 && !isOutput[r] && us[0].OpType == "Mul" && us[0].Domain == "" {
			// Mul(r, c) = Mul(swap(x), Mul(c, sign)).
			mul := us[0]
			other := mul.Inputs[0]
			if other == r {
				other = mul.Inputs[1]
			}
			if other != r {
				mul.Inputs = []string{swapped, b.Op(tag+"/signed", "Mul", []string{other, sign})}
				drop[cat] = true
				continue
			}
		}
		b.Add(&ir.Node{Name: tag + "/Mul", OpType: "Mul", Inputs: []string{swapped, sign}, Outputs: []string{r}})
		drop[cat] = true
	}
	if len(drop) == 0 {
		return nil
	}
	g.Nodes = slices.DeleteFunc(g.Nodes, func(n *ir.Node) bool { return drop[n] })
	return ir.TopoSort(g)
}

// rotateHalfOf matches Concat(Neg(x2), x1) on the last axis, where x1 and
// x2 are the two outputs of a Split of x into equal halves of h along its
// last axis, and returns x and h.
func rotateHalfOf(cat *ir.Node, prod map[string]*ir.Node, si *shapeInfo) (string, int64, bool) {
	if cat.OpType != "Concat" || cat.Domain != "" || len(cat.Inputs) != 2 || len(cat.Outputs) != 1 {
		return "", 0, false
	}
	neg := prod[cat.Inputs[0]]
	if neg == nil || neg.OpType != "Neg" || neg.Domain != "" {
		return "", 0, false
	}
	split := prod[neg.Inputs[0]]
	if split == nil || split.OpType != "Split" || split.Domain != "" || len(split.Outputs) != 2 ||
		split.Outputs[1] != neg.Inputs[0] || split.Outputs[0] != cat.Inputs[1] || len(split.Inputs) != 2 {
		return "", 0, false
	}
	x := split.Inputs[0]
	d, ok := si.dims[x]
	if !ok || len(d) == 0 {
		return "", 0, false
	}
	last := len(d) - 1
	if a, ok := normAxis(split.AttrInt("axis", 0), len(d)); !ok || a != last {
		return "", 0, false
	}
	if a, ok := normAxis(cat.AttrInt("axis", 0), len(d)); !ok || a != last {
		return "", 0, false
	}
	width, okW := isNum(d[last])
	sizes, okS := si.constInts(split.Inputs[1])
	if !okW || !okS || len(sizes) != 2 || sizes[0] != sizes[1] || 2*sizes[0] != width || width == 0 {
		return "", 0, false
	}
	return x, sizes[0], true
}

// signTensor is [−1 (h times), 1 (h times)] of type t.
func signTensor(name string, t ir.DType, h int64) *ir.Tensor {
	v := make([]float64, 2*h)
	for i := range v {
		v[i] = 1
		if int64(i) < h {
			v[i] = -1
		}
	}
	if t == ir.Float64 {
		return ir.NewTensorF64(name, []int64{2 * h}, v)
	}
	f := make([]float32, len(v))
	for i, x := range v {
		f[i] = float32(x)
	}
	return ir.NewTensorF32(name, []int64{2 * h}, f)
}
