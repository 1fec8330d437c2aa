package runtime

import (
	"fmt"
	"math"
	"testing"
	"time"

	pb "github.com/dartc/dartc/ir/onnxpb"
	"google.golang.org/protobuf/proto"
)

// The decode graph grows its cache by Concat(past, new): every step copies
// the whole cache into a new present. The alternative measured here keeps
// a fixed-capacity cache and writes each step's keys/values in place with
// ScatterND whose output is bound to its input's buffer, then attends over
// the whole capacity under a mask. These graphs hold one layer's tensor of
// each kind, at the qwen2.5-0.5b cache shape (2 KV heads, head_dim 64,
// 7 query heads per KV head), float32.

// growthGraph builds a one-op-family graph: "concat" (past, new → present),
// "scatter" (cache, indices, update → cache') or "attention" (q, k, v,
// mask → out: softmax(q·kᵀ + mask)·v).
func growthGraph(kind string, B, H, G, T, D int64) ([]byte, []IOInfo, []IOInfo) {
	str := proto.String
	vi := func(name string, dt DType, shape ...int64) *pb.ValueInfoProto {
		dims := make([]*pb.TensorShapeProto_Dimension, len(shape))
		for i, d := range shape {
			dims[i] = &pb.TensorShapeProto_Dimension{Value: &pb.TensorShapeProto_Dimension_DimValue{DimValue: d}}
		}
		return &pb.ValueInfoProto{Name: str(name), Type: &pb.TypeProto{Value: &pb.TypeProto_TensorType{
			TensorType: &pb.TypeProto_Tensor{ElemType: proto.Int32(int32(dt.ort())), Shape: &pb.TensorShapeProto{Dim: dims}}}}}
	}
	info := func(name string, dt DType, shape ...int64) IOInfo {
		return IOInfo{Name: name, DType: dt, Dims: shape, Params: make([]string, len(shape))}
	}
	attr := func(name string, i int64) *pb.AttributeProto {
		return &pb.AttributeProto{Name: str(name), Type: pb.AttributeProto_INT.Enum(), I: proto.Int64(i)}
	}
	g := &pb.GraphProto{Name: str(kind)}
	var ins, outs []IOInfo
	add := func(in bool, name string, dt DType, shape ...int64) {
		if in {
			g.Input = append(g.Input, vi(name, dt, shape...))
			ins = append(ins, info(name, dt, shape...))
		} else {
			g.Output = append(g.Output, vi(name, dt, shape...))
			outs = append(outs, info(name, dt, shape...))
		}
	}
	switch kind {
	case "concat":
		add(true, "past", Float32, B, H, T, D)
		add(true, "new", Float32, B, H, 1, D)
		add(false, "present", Float32, B, H, T+1, D)
		g.Node = []*pb.NodeProto{{OpType: str("Concat"), Input: []string{"past", "new"}, Output: []string{"present"}, Attribute: []*pb.AttributeProto{attr("axis", 2)}}}
	case "scatter":
		add(true, "cache", Float32, B, H, T, D)
		add(true, "indices", Int64, B, H, 1, 3)
		add(true, "update", Float32, B, H, 1, D)
		add(false, "written", Float32, B, H, T, D)
		g.Node = []*pb.NodeProto{{OpType: str("ScatterND"), Input: []string{"cache", "indices", "update"}, Output: []string{"written"}}}
	case "attention":
		add(true, "q", Float32, B, H, G, D)
		add(true, "k", Float32, B, H, T, D)
		add(true, "v", Float32, B, H, T, D)
		add(true, "mask", Float32, B, 1, 1, T)
		add(false, "out", Float32, B, H, G, D)
		g.Node = []*pb.NodeProto{
			{OpType: str("Transpose"), Input: []string{"k"}, Output: []string{"kt"}, Attribute: []*pb.AttributeProto{{Name: str("perm"), Type: pb.AttributeProto_INTS.Enum(), Ints: []int64{0, 1, 3, 2}}}},
			{OpType: str("MatMul"), Input: []string{"q", "kt"}, Output: []string{"scores"}},
			{OpType: str("Add"), Input: []string{"scores", "mask"}, Output: []string{"masked"}},
			{OpType: str("Softmax"), Input: []string{"masked"}, Output: []string{"p"}, Attribute: []*pb.AttributeProto{attr("axis", -1)}},
			{OpType: str("MatMul"), Input: []string{"p", "v"}, Output: []string{"out"}},
		}
	case "attention-seqlen":
		// ONNX's Attention (opset 24) over a fixed capacity T, told each
		// row's filled length (nonpad_kv_seqlen).
		add(true, "q", Float32, B, H*G, 1, D)
		add(true, "k", Float32, B, H, T, D)
		add(true, "v", Float32, B, H, T, D)
		add(true, "filled", Int64, B)
		add(false, "out", Float32, B, H*G, 1, D)
		g.Node = []*pb.NodeProto{{OpType: str("Attention"), Input: []string{"q", "k", "v", "", "", "", "filled"}, Output: []string{"out"}}}
	case "gqa-shared":
		// ONNX Runtime's GroupQueryAttention over a fixed-capacity cache T
		// whose present outputs are bound to the past inputs' buffers: it
		// writes the step's key/value in place and attends over each
		// row's filled length (seqlens_k + 1).
		add(true, "q", Float32, B, 1, H*G*D)
		add(true, "k", Float32, B, 1, H*D)
		add(true, "v", Float32, B, 1, H*D)
		add(true, "past_key", Float32, B, H, T, D)
		add(true, "past_value", Float32, B, H, T, D)
		add(true, "seqlens_k", Int32, B)
		add(true, "total_len", Int32)
		add(false, "out", Float32, B, 1, H*G*D)
		add(false, "present_key", Float32, B, H, T, D)
		add(false, "present_value", Float32, B, H, T, D)
		g.Node = []*pb.NodeProto{{OpType: str("GroupQueryAttention"), Domain: str("com.microsoft"),
			Input:     []string{"q", "k", "v", "past_key", "past_value", "seqlens_k", "total_len"},
			Output:    []string{"out", "present_key", "present_value"},
			Attribute: []*pb.AttributeProto{attr("num_heads", H*G), attr("kv_num_heads", H)}}}
	}
	opset, irv := int64(17), int64(8)
	if kind == "attention-seqlen" {
		opset, irv = 24, 11
	}
	m := &pb.ModelProto{IrVersion: proto.Int64(irv), ProducerName: str("dartc"), Graph: g,
		OpsetImport: []*pb.OperatorSetIdProto{{Domain: str(""), Version: proto.Int64(opset)}, {Domain: str("com.microsoft"), Version: proto.Int64(1)}}}
	b, err := proto.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b, ins, outs
}

func openGrowth(t testing.TB, dev *Device, kind string, B, H, G, T, D int64) *BoundSession {
	t.Helper()
	model, ins, outs := growthGraph(kind, B, H, G, T, D)
	s, err := newBoundSessionFromBytes(kind+".onnx", model, dev, &Options{IntraOpThreads: 1}, ins, outs)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// scatterIndices addresses column col of every (row, head) of a
// [B, H, cap, D] cache.
func scatterIndices(B, H, col int64) *Tensor {
	idx := NewTensor(Int64, B, H, 1, 3)
	v := idx.Int64()
	for b := int64(0); b < B; b++ {
		for h := int64(0); h < H; h++ {
			copy(v[(b*H+h)*3:], []int64{b, h, col})
		}
	}
	return idx
}

// TestScatterWritesCacheInPlace: ScatterND whose output is bound to its
// input's buffer reads and writes that one buffer correctly — ONNX
// Runtime returns the bound output at the input's address at every step,
// and after the steps the buffer holds every written column and zeros
// elsewhere (computed here independently: column c of row b, head h holds
// the values step c wrote). That the copy of the untouched columns is then
// skipped is shown by BenchmarkKVGrowth (scatter-alias vs scatter-copy).
func TestScatterWritesCacheInPlace(t *testing.T) {
	dev, err := OpenDevice(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	const B, H, C, D, steps = 2, 3, 8, 4, 5
	s := openGrowth(t, dev, "scatter", B, H, 1, C, D)
	defer s.Destroy()
	cache, err := dev.NewTensor("cache", Float32, B, H, C, D)
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Destroy()
	at, err := cache.val.DataPointer()
	if err != nil {
		t.Fatal(err)
	}
	value := func(b, h, c, d int64) float32 { return float32(1000*b + 100*h + 10*c + d + 1) }
	for c := int64(0); c < steps; c++ {
		upd := NewTensor(Float32, B, H, 1, D)
		u := upd.Float32()
		for b := int64(0); b < B; b++ {
			for h := int64(0); h < H; h++ {
				for d := int64(0); d < D; d++ {
					u[(b*H+h)*D+d] = value(b, h, c, d)
				}
			}
		}
		if _, err := s.Run(map[string]Value{"cache": cache, "indices": scatterIndices(B, H, c), "update": upd},
			map[string]*DeviceTensor{"written": cache}); err != nil {
			t.Fatal(err)
		}
		vals, err := s.bind.Outputs(nil)
		if err != nil {
			t.Fatal(err)
		}
		got, err := vals[0].DataPointer()
		for _, v := range vals {
			v.Release()
		}
		if err != nil {
			t.Fatal(err)
		}
		if got != at {
			t.Fatalf("step %d: ONNX Runtime returned the output at %#x, the bound buffer is at %#x", c, got, at)
		}
	}
	host, err := cache.Download()
	if err != nil {
		t.Fatal(err)
	}
	h := host.Float32()
	for b := int64(0); b < B; b++ {
		for hd := int64(0); hd < H; hd++ {
			for c := int64(0); c < C; c++ {
				for d := int64(0); d < D; d++ {
					want := float32(0)
					if c < steps {
						want = value(b, hd, c, d)
					}
					if got := h[((b*H+hd)*C+c)*D+d]; got != want {
						t.Fatalf("cache[%d,%d,%d,%d] = %v, want %v", b, hd, c, d, got, want)
					}
				}
			}
		}
	}
}

// BenchmarkKVGrowth measures, per decode step and per layer at the
// qwen2.5-0.5b cache shape (batch 8, 2 KV heads, 7 query heads each,
// head_dim 64, float32), on the device of a resident decoder (here the
// CPU), at filled length T with capacity 4096:
//   - concat: growing the cache by Concat, what decode.onnx does;
//   - scatter-alias / scatter-copy: writing the step's column with
//     ScatterND into a fixed-capacity buffer, the output bound to the input
//     buffer or to another one (then the untouched columns are copied);
//   - attn-len / attn-cap: softmax(q·kᵀ + mask)·v over T columns, or over
//     the whole capacity with the unfilled columns masked;
//   - attn-cap-seqlen: ONNX's Attention (opset 24) over the capacity with
//     nonpad_kv_seqlen = T;
//   - gqa-shared: ONNX Runtime's GroupQueryAttention (com.microsoft) with
//     its presents bound to its pasts' buffers and seqlens_k = T − 1: the
//     write and the attention in one op (timing only; its numerics are not
//     checked here).
//
// A step costs 2·concat + attn-len with the growing cache, 2·scatter-alias
// + attn-cap with the fixed one (step-concat, step-fixed, fixed/concat);
// gqa/concat compares the fused op with the growing cache. Every op runs in
// every iteration, interleaved.
// Run: go test ./runtime -run '^$' -bench KVGrowth -benchtime 20x
func BenchmarkKVGrowth(b *testing.B) {
	dev, err := OpenDevice(nil)
	if err != nil {
		b.Fatal(err)
	}
	defer dev.Close()
	const B, H, G, D, capacity = 8, 2, 7, 64, 4096
	for _, T := range []int64{256, 1024, 2048, 4096} {
		b.Run(fmt.Sprintf("len=%d", T), func(b *testing.B) {
			concat := openGrowth(b, dev, "concat", B, H, G, T, D)
			defer concat.Destroy()
			scatter := openGrowth(b, dev, "scatter", B, H, G, T, D)
			defer scatter.Destroy()
			attnT := openGrowth(b, dev, "attention", B, H, G, T, D)
			defer attnT.Destroy()
			attnCap := openGrowth(b, dev, "attention", B, H, G, capacity, D)
			defer attnCap.Destroy()
			attnSeq := openGrowth(b, dev, "attention-seqlen", B, H, G, capacity, D)
			defer attnSeq.Destroy()
			gqa := openGrowth(b, dev, "gqa-shared", B, H, G, capacity, D)
			defer gqa.Destroy()
			tensor := func(shape ...int64) *DeviceTensor {
				t, err := dev.NewTensor("x", Float32, shape...)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(t.Destroy)
				return t
			}
			past, nw := tensor(B, H, T, D), tensor(B, H, 1, D)
			cache, other, upd := tensor(B, H, T, D), tensor(B, H, T, D), tensor(B, H, 1, D)
			q := tensor(B, H, G, D)
			k, v := tensor(B, H, T, D), tensor(B, H, T, D)
			kc, vc := tensor(B, H, capacity, D), tensor(B, H, capacity, D)
			mask := func(n, filled int64) *DeviceTensor {
				m := NewTensor(Float32, B, 1, 1, n)
				for i, x := range m.Float32() {
					if int64(i)%n >= filled {
						x = float32(math.Inf(-1))
					}
					m.Float32()[i] = x
				}
				t, err := dev.UploadTensor("mask", m)
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(t.Destroy)
				return t
			}
			maskT, maskCap := mask(T, T), mask(capacity, T)
			outT, outCap := tensor(B, H, G, D), tensor(B, H, G, D)
			q4, out4 := tensor(B, H*G, 1, D), tensor(B, H*G, 1, D)
			filled := NewTensor(Int64, B)
			for i := range filled.Int64() {
				filled.Int64()[i] = T
			}
			gq, gk, gv, gout := tensor(B, 1, H*G*D), tensor(B, 1, H*D), tensor(B, 1, H*D), tensor(B, 1, H*G*D)
			seqlens, total := NewTensor(Int32, B), NewTensor(Int32)
			for i := range seqlens.Int32() {
				seqlens.Int32()[i] = int32(T - 1)
			}
			total.Int32()[0] = int32(T)
			idx := scatterIndices(B, H, T-1)
			var tConcat, tAlias, tCopy, tAttnT, tAttnCap, tAttnSeq, tGQA time.Duration
			timed := func(acc *time.Duration, f func() error) {
				start := time.Now()
				if err := f(); err != nil {
					b.Fatal(err)
				}
				*acc += time.Since(start)
			}
			n := 0
			for b.Loop() {
				n++
				timed(&tConcat, func() error {
					out, _, err := concat.RunDevice(map[string]Value{"past": past, "new": nw}, nil, []string{"present"})
					freeAll(out)
					return err
				})
				timed(&tAlias, func() error {
					_, err := scatter.Run(map[string]Value{"cache": cache, "indices": idx, "update": upd}, map[string]*DeviceTensor{"written": cache})
					return err
				})
				timed(&tCopy, func() error {
					_, err := scatter.Run(map[string]Value{"cache": cache, "indices": idx, "update": upd}, map[string]*DeviceTensor{"written": other})
					return err
				})
				timed(&tAttnT, func() error {
					_, err := attnT.Run(map[string]Value{"q": q, "k": k, "v": v, "mask": maskT}, map[string]*DeviceTensor{"out": outT})
					return err
				})
				timed(&tAttnCap, func() error {
					_, err := attnCap.Run(map[string]Value{"q": q, "k": kc, "v": vc, "mask": maskCap}, map[string]*DeviceTensor{"out": outCap})
					return err
				})
				timed(&tGQA, func() error {
					_, err := gqa.Run(map[string]Value{"q": gq, "k": gk, "v": gv, "past_key": kc, "past_value": vc, "seqlens_k": seqlens, "total_len": total},
						map[string]*DeviceTensor{"out": gout, "present_key": kc, "present_value": vc})
					return err
				})
				timed(&tAttnSeq, func() error {
					_, err := attnSeq.Run(map[string]Value{"q": q4, "k": kc, "v": vc, "filled": filled}, map[string]*DeviceTensor{"out": out4})
					return err
				})
			}
			us := func(d time.Duration) float64 { return float64(d.Microseconds()) / float64(n) }
			b.ReportMetric(us(tConcat), "concat-µs")
			b.ReportMetric(us(tAlias), "scatter-alias-µs")
			b.ReportMetric(us(tCopy), "scatter-copy-µs")
			b.ReportMetric(us(tAttnT), "attn-len-µs")
			b.ReportMetric(us(tAttnCap), "attn-cap-µs")
			b.ReportMetric(us(tAttnSeq), "attn-cap-seqlen-µs")
			b.ReportMetric(us(tGQA), "gqa-shared-µs")
			grow, fixed := 2*us(tConcat)+us(tAttnT), 2*us(tAlias)+us(tAttnCap)
			b.ReportMetric(grow, "step-concat-µs")
			b.ReportMetric(fixed, "step-fixed-µs")
			b.ReportMetric(fixed/grow, "fixed/concat")
			b.ReportMetric(us(tGQA)/grow, "gqa/concat")
		})
	}
}
