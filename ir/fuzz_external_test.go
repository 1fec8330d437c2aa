package ir_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/ir/onnxpb"
	"google.golang.org/protobuf/proto"
)

// FuzzExternalData: a model whose initializer declares any dims, dtype,
// location, offset and length over a data file of any size loads or is
// refused, never panics or reads past the file, and an accepted reference
// lies inside the file with exactly the bytes its dims need.
func FuzzExternalData(f *testing.F) {
	f.Add(int64(4), int64(8), int64(1), int32(onnxpb.TensorProto_FLOAT), "model.onnx.data", "0", "128", uint16(128))
	f.Add(int64(1<<32), int64(1<<32), int64(1), int32(onnxpb.TensorProto_FLOAT), "model.onnx.data", "0", "0", uint16(0))
	f.Add(int64(1<<31), int64(1<<31), int64(4), int32(onnxpb.TensorProto_DOUBLE), "model.onnx.data", "", "", uint16(16))
	f.Add(int64(1), int64(1), int64(1), int32(onnxpb.TensorProto_FLOAT16), "model.onnx.data", "9223372036854775807", "2", uint16(4))
	f.Add(int64(2), int64(2), int64(0), int32(onnxpb.TensorProto_INT64), "../model.onnx.data", "0", "", uint16(64))
	f.Add(int64(-1), int64(2), int64(2), int32(onnxpb.TensorProto_FLOAT), "/etc/passwd", "-4", "x", uint16(8))
	f.Fuzz(func(t *testing.T, d0, d1, d2 int64, dtype int32, location, offset, length string, fileSize uint16) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "model.onnx.data"), make([]byte, fileSize), 0o644); err != nil {
			t.Fatal(err)
		}
		ext := []*onnxpb.StringStringEntryProto{{Key: proto.String("location"), Value: proto.String(location)}}
		if offset != "" {
			ext = append(ext, &onnxpb.StringStringEntryProto{Key: proto.String("offset"), Value: proto.String(offset)})
		}
		if length != "" {
			ext = append(ext, &onnxpb.StringStringEntryProto{Key: proto.String("length"), Value: proto.String(length)})
		}
		init := &onnxpb.TensorProto{Name: proto.String("w"), DataType: proto.Int32(dtype), Dims: []int64{d0, d1, d2},
			DataLocation: onnxpb.TensorProto_EXTERNAL.Enum(), ExternalData: ext}
		model := &onnxpb.ModelProto{
			IrVersion:   proto.Int64(8),
			OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(17)}},
			Graph: &onnxpb.GraphProto{
				Name:        proto.String("g"),
				Initializer: []*onnxpb.TensorProto{init},
				Node:        []*onnxpb.NodeProto{{OpType: proto.String("Identity"), Input: []string{"w"}, Output: []string{"y"}, Name: proto.String("n")}},
				Output:      []*onnxpb.ValueInfoProto{{Name: proto.String("y")}},
			},
		}
		b, err := proto.Marshal(model)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "model.onnx")
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		m, err := ir.Load(path)
		if err != nil {
			return
		}
		w := m.Graph.Initializer("w")
		if w == nil || w.External == nil {
			t.Fatal("accepted model lost its external initializer")
		}
		e := w.External
		if e.Offset < 0 || e.Length < 0 || e.Offset > int64(fileSize) || e.Length > int64(fileSize)-e.Offset {
			t.Fatalf("accepted offset %d length %d over a %d-byte file", e.Offset, e.Length, fileSize)
		}
		if sz := int64(w.DType.Size()); sz > 0 && e.Length != w.ByteSize() {
			t.Fatalf("accepted length %d for %v %s (%d bytes)", e.Length, w.Dims, w.DType, w.ByteSize())
		}
		if w.NumElements() < 0 {
			t.Fatalf("accepted dims %v: %d elements", w.Dims, w.NumElements())
		}

	})
}
