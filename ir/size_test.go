package ir_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/ir/onnxpb"
	"google.golang.org/protobuf/proto"
)

// TestHugeSizesRefused: declared tensor sizes whose element or byte count
// overflows int64, and external offsets whose end overflows, are refused
// at parse time. Before, [2^32, 2^32] wrapped to 0 elements and passed as
// an empty tensor, and offset 2^63−1 plus a length wrapped negative and
// passed the past-the-end check.
func TestHugeSizesRefused(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(pb *onnxpb.ModelProto)
		want   error
		phrase string
	}{
		{"external dims overflow", func(pb *onnxpb.ModelProto) {
			pb.Graph.Initializer[0].Dims = []int64{1 << 32, 1 << 32}
			setExternal(pb, "length", "0")
		}, ir.ErrTensorSize, "overflow"},
		{"inline dims overflow", func(pb *onnxpb.ModelProto) {
			pb.Graph.Initializer = append(pb.Graph.Initializer, &onnxpb.TensorProto{
				Name: proto.String("huge"), DataType: proto.Int32(int32(onnxpb.TensorProto_FLOAT)),
				Dims: []int64{1 << 32, 1 << 32}, RawData: []byte{},
			})
		}, ir.ErrTensorSize, "overflow"},
		{"byte size overflow", func(pb *onnxpb.ModelProto) {
			pb.Graph.Initializer = append(pb.Graph.Initializer, &onnxpb.TensorProto{
				Name: proto.String("huge"), DataType: proto.Int32(int32(onnxpb.TensorProto_DOUBLE)),
				Dims: []int64{1 << 31, 1 << 31}, RawData: []byte{},
			})
		}, ir.ErrTensorSize, "overflow"},
		{"offset + length overflow", func(pb *onnxpb.ModelProto) {
			setExternal(pb, "offset", "9223372036854775807")
		}, ir.ErrExternalData, "past the end"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeModel(t, t.TempDir(), c.mutate)
			_, err := ir.Load(path)
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.phrase) {
				t.Fatalf("got %v, want %v saying %q", err, c.want, c.phrase)
			}
		})
	}
}
