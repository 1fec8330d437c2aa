package ir

import (
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/dartc/dartc/internal/atomicfile"

	"github.com/dartc/dartc/ir/onnxpb"
	"google.golang.org/protobuf/proto"
)

// maxProtoBytes is protobuf's 2 GiB limit on one message; ONNX Runtime
// refuses larger model files.
const maxProtoBytes = 2<<30 - 1

// EmitOptions controls emission.
type EmitOptions struct {
	// Location maps an external reference to the location written in the
	// emitted model (relative to the emitted file's folder). Nil keeps the
	// reference's own location.
	Location func(*External) string
}

// ToProto converts m to its protobuf form.
func ToProto(m *Model, opts EmitOptions) (*onnxpb.ModelProto, error) {
	pb := &onnxpb.ModelProto{
		IrVersion:     proto.Int64(m.IRVersion),
		MetadataProps: kvsToPB(m.Metadata),
		Functions:     m.Functions,
	}
	setStr := func(dst **string, v string) {
		if v != "" {
			*dst = proto.String(v)
		}
	}
	setStr(&pb.ProducerName, m.ProducerName)
	setStr(&pb.ProducerVersion, m.ProducerVersion)
	setStr(&pb.Domain, m.Domain)
	setStr(&pb.DocString, m.Doc)
	if m.ModelVersion != 0 {
		pb.ModelVersion = proto.Int64(m.ModelVersion)
	}
	for _, o := range m.Opsets {
		pb.OpsetImport = append(pb.OpsetImport, &onnxpb.OperatorSetIdProto{Domain: proto.String(o.Domain), Version: proto.Int64(o.Version)})
	}
	g, err := graphToPB(m.Graph, opts)
	if err != nil {
		return nil, err
	}
	pb.Graph = g
	return pb, nil
}

// Marshal serializes m.
func Marshal(m *Model, opts EmitOptions) ([]byte, error) {
	pb, err := ToProto(m, opts)
	if err != nil {
		return nil, err
	}
	if n := proto.Size(pb); n > maxProtoBytes {
		return nil, fmt.Errorf("ir: model is %d bytes, over protobuf's 2 GiB limit: store the weights as external data", n)
	}
	return proto.MarshalOptions{Deterministic: true}.Marshal(pb)
}

// Save writes m to path atomically (a temporary file renamed into place).
func Save(m *Model, path string, opts EmitOptions) error {
	b, err := Marshal(m, opts)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, b)
}

func kvsToPB(kvs []KV) []*onnxpb.StringStringEntryProto {
	var out []*onnxpb.StringStringEntryProto
	for _, kv := range kvs {
		out = append(out, &onnxpb.StringStringEntryProto{Key: proto.String(kv.Key), Value: proto.String(kv.Value)})
	}
	return out
}

func graphToPB(g *Graph, opts EmitOptions) (*onnxpb.GraphProto, error) {
	pb := &onnxpb.GraphProto{Name: proto.String(g.Name), MetadataProps: kvsToPB(g.Metadata)}
	if g.Doc != "" {
		pb.DocString = proto.String(g.Doc)
	}
	for _, v := range g.Inputs {
		pb.Input = append(pb.Input, valueInfoToPB(v))
	}
	for _, v := range g.Outputs {
		pb.Output = append(pb.Output, valueInfoToPB(v))
	}
	for _, v := range g.ValueInfo {
		pb.ValueInfo = append(pb.ValueInfo, valueInfoToPB(v))
	}
	for _, t := range g.Initializers {
		tp, err := TensorToPB(t, opts)
		if err != nil {
			return nil, err
		}
		pb.Initializer = append(pb.Initializer, tp)
	}
	for _, n := range g.Nodes {
		np := &onnxpb.NodeProto{
			Input: n.Inputs, Output: n.Outputs, OpType: proto.String(n.OpType),
			Attribute: n.Attrs, MetadataProps: kvsToPB(n.Metadata),
		}
		if n.Name != "" {
			np.Name = proto.String(n.Name)
		}
		if n.Domain != "" {
			np.Domain = proto.String(n.Domain)
		}
		if n.Overload != "" {
			np.Overload = proto.String(n.Overload)
		}
		if n.Doc != "" {
			np.DocString = proto.String(n.Doc)
		}
		pb.Node = append(pb.Node, np)
	}
	return pb, nil
}

func valueInfoToPB(v *ValueInfo) *onnxpb.ValueInfoProto {
	pb := &onnxpb.ValueInfoProto{Name: proto.String(v.Name)}
	if v.Doc != "" {
		pb.DocString = proto.String(v.Doc)
	}
	if v.Type != nil {
		tt := &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(int32(v.Type.DType))}
		if v.Type.Shape {
			tt.Shape = &onnxpb.TensorShapeProto{Dim: []*onnxpb.TensorShapeProto_Dimension{}}
			for _, d := range v.Type.Dims {
				dp := &onnxpb.TensorShapeProto_Dimension{}
				switch {
				case d.Param != "":
					dp.Value = &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d.Param}
				case d.Value >= 0:
					dp.Value = &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d.Value}
				}
				tt.Shape.Dim = append(tt.Shape.Dim, dp)
			}
		}
		pb.Type = &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{TensorType: tt}}
	}
	return pb
}

// TensorToPB converts a tensor to its protobuf form: raw_data inline, or an
// external reference.
func TensorToPB(t *Tensor, opts EmitOptions) (*onnxpb.TensorProto, error) {
	pb := &onnxpb.TensorProto{Name: proto.String(t.Name), DataType: proto.Int32(int32(t.DType)), Dims: t.Dims}
	if pb.Dims == nil {
		pb.Dims = []int64{}
	}
	if t.Doc != "" {
		pb.DocString = proto.String(t.Doc)
	}
	if t.External == nil {
		pb.RawData = t.Raw
		if pb.RawData == nil {
			pb.RawData = []byte{}
		}
		return pb, nil
	}
	loc := t.External.Location
	if opts.Location != nil {
		loc = opts.Location(t.External)
	}
	if loc == "" {
		return nil, fmt.Errorf("ir: tensor %q: no location for external data %s", t.Name, t.External.File)
	}
	pb.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
	pb.ExternalData = kvsToPB([]KV{
		{"location", filepath.ToSlash(loc)},
		{"offset", strconv.FormatInt(t.External.Offset, 10)},
		{"length", strconv.FormatInt(t.External.Length, 10)},
	})
	return pb, nil
}
