package runtime

import (
	"fmt"
	"strconv"

	pb "github.com/dartc/dartc/ir/onnxpb"
	"google.golang.org/protobuf/proto"
)

// TensorSpec names a tensor's layout.
type TensorSpec struct {
	Name  string
	DType DType
	Shape []int64
}

// Accumulator sums sets of device tensors on the device — gradients over
// micro-batches — and reports whether the added set was finite, so that
// only that flag crosses to Go. It runs a small ONNX graph that dartc
// builds in memory: sum_i = acc_i + g_i (elementwise, the same IEEE
// additions a host loop makes) and nonfinite = max_i any(isnan(g_i) or
// isinf(g_i)).
type Accumulator struct {
	sess  *BoundSession
	specs []TensorSpec
}

// NewAccumulator opens the accumulation graph for specs on dev.
func NewAccumulator(dev *Device, opts *Options, specs []TensorSpec) (*Accumulator, error) {
	if len(specs) == 0 {
		return nil, fmt.Errorf("runtime: accumulator: no tensors")
	}
	model, ins, outs, err := accumulateGraph(specs)
	if err != nil {
		return nil, fmt.Errorf("runtime: accumulator: %w", err)
	}
	o := Options{}
	if opts != nil {
		o = *opts
	}
	o.Outputs, o.Config = nil, nil
	s, err := newBoundSessionFromBytes("accumulate.onnx", model, dev, &o, ins, outs)
	if err != nil {
		return nil, err
	}
	return &Accumulator{sess: s, specs: specs}, nil
}

// Destroy releases the accumulator's session.
func (a *Accumulator) Destroy() error { return a.sess.Destroy() }

// Add writes sum[i] = acc[i] + g[i] on the device and reports whether every
// element of every g[i] is finite. sum must not alias acc or g.
func (a *Accumulator) Add(sum, acc, g []*DeviceTensor) (bool, error) {
	if len(sum) != len(a.specs) || len(acc) != len(a.specs) || len(g) != len(a.specs) {
		return false, fmt.Errorf("runtime: accumulate: want %d tensors in each set, got %d, %d, %d", len(a.specs), len(sum), len(acc), len(g))
	}
	in := map[string]Value{}
	into := map[string]*DeviceTensor{}
	for i := range a.specs {
		if sum[i] == acc[i] || sum[i] == g[i] {
			return false, fmt.Errorf("runtime: accumulate: the sum %s aliases an addend", sum[i].Name)
		}
		k := strconv.Itoa(i)
		in["acc."+k], in["g."+k], into["sum."+k] = acc[i], g[i], sum[i]
	}
	out, err := a.sess.Run(in, into, "nonfinite")
	if err != nil {
		return false, err
	}
	return out["nonfinite"].Floats()[0] == 0, nil
}

func accumulateGraph(specs []TensorSpec) ([]byte, []IOInfo, []IOInfo, error) {
	str := proto.String
	vi := func(name string, dt DType, shape []int64) *pb.ValueInfoProto {
		dims := make([]*pb.TensorShapeProto_Dimension, len(shape))
		for i, d := range shape {
			dims[i] = &pb.TensorShapeProto_Dimension{Value: &pb.TensorShapeProto_Dimension_DimValue{DimValue: d}}
		}
		return &pb.ValueInfoProto{Name: str(name), Type: &pb.TypeProto{Value: &pb.TypeProto_TensorType{
			TensorType: &pb.TypeProto_Tensor{ElemType: proto.Int32(int32(dt.ort())), Shape: &pb.TensorShapeProto{Dim: dims}}}}}
	}
	node := func(op string, out string, in ...string) *pb.NodeProto {
		return &pb.NodeProto{OpType: str(op), Name: str(out), Input: in, Output: []string{out}}
	}
	info := func(name string, dt DType, shape []int64) IOInfo {
		return IOInfo{Name: name, DType: dt, Dims: append([]int64(nil), shape...), Params: make([]string, len(shape))}
	}
	g := &pb.GraphProto{Name: str("accumulate")}
	var ins, outs []IOInfo
	var flags []string
	for i, s := range specs {
		if s.DType != Float32 && s.DType != Float64 {
			return nil, nil, nil, fmt.Errorf("%s: %v; gradients are float32 or float64", s.Name, s.DType)
		}
		k := strconv.Itoa(i)
		acc, gr, sum := "acc."+k, "g."+k, "sum."+k
		g.Input = append(g.Input, vi(acc, s.DType, s.Shape), vi(gr, s.DType, s.Shape))
		g.Output = append(g.Output, vi(sum, s.DType, s.Shape))
		ins = append(ins, info(acc, s.DType, s.Shape), info(gr, s.DType, s.Shape))
		outs = append(outs, info(sum, s.DType, s.Shape))
		bad := "bad." + k
		g.Node = append(g.Node,
			node("Add", sum, acc, gr),
			node("IsNaN", "nan."+k, gr),
			node("IsInf", "inf."+k, gr),
			node("Or", "or."+k, "nan."+k, "inf."+k),
			&pb.NodeProto{OpType: str("Cast"), Name: str("cast." + k), Input: []string{"or." + k}, Output: []string{"f." + k},
				Attribute: []*pb.AttributeProto{{Name: str("to"), Type: pb.AttributeProto_INT.Enum(), I: proto.Int64(int64(Float32.ort()))}}},
			&pb.NodeProto{OpType: str("ReduceMax"), Name: str(bad), Input: []string{"f." + k}, Output: []string{bad},
				Attribute: []*pb.AttributeProto{{Name: str("keepdims"), Type: pb.AttributeProto_INT.Enum(), I: proto.Int64(0)}}},
		)
		flags = append(flags, bad)
	}
	g.Node = append(g.Node, node("Max", "nonfinite", flags...))
	g.Output = append(g.Output, vi("nonfinite", Float32, nil))
	outs = append(outs, info("nonfinite", Float32, nil))
	m := &pb.ModelProto{IrVersion: proto.Int64(8), ProducerName: str("dartc"), Graph: g,
		OpsetImport: []*pb.OperatorSetIdProto{{Domain: str(""), Version: proto.Int64(17)}}}
	b, err := proto.Marshal(m)
	return b, ins, outs, err
}
