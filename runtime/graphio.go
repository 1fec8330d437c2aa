package runtime

import (
	"fmt"
	"os"

	pb "github.com/dartc/dartc/ir/onnxpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Field numbers from onnx.proto: ModelProto.graph, GraphProto.initializer,
// .input, .output, TensorProto.name.
const (
	fieldModelGraph       = 7
	fieldGraphInitializer = 5
	fieldGraphInput       = 11
	fieldGraphOutput      = 12
	fieldTensorName       = 8
)

// graphIO reads a model's graph inputs and outputs from its file: names,
// element types, dims (−1 where not fixed) and symbolic dim names. It walks
// the protobuf wire format and decodes only the graph's value infos and the
// initializers' names, so inline weights are skipped, never copied. As ONNX
// Runtime does, inputs that name an initializer (overridable constants of
// IR < 4 models) are not inputs. Reading the file rather than asking ONNX
// Runtime spares a second session creation, which for a large graph takes
// as long as the real one, and runs no optimizer the caller did not ask for.
func graphIO(path string) (inputs, outputs []IOInfo, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	graph, err := findField(b, fieldModelGraph)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	inits := map[string]bool{}
	var ins, outs []*pb.ValueInfoProto
	for len(graph) > 0 {
		num, typ, n := protowire.ConsumeTag(graph)
		if n < 0 {
			return nil, nil, fmt.Errorf("%s: graph: %w", path, protowire.ParseError(n))
		}
		graph = graph[n:]
		if typ == protowire.BytesType && (num == fieldGraphInput || num == fieldGraphOutput || num == fieldGraphInitializer) {
			v, m := protowire.ConsumeBytes(graph)
			if m < 0 {
				return nil, nil, fmt.Errorf("%s: graph: %w", path, protowire.ParseError(m))
			}
			graph = graph[m:]
			if num == fieldGraphInitializer {
				name, err := tensorName(v)
				if err != nil {
					return nil, nil, fmt.Errorf("%s: initializer: %w", path, err)
				}
				inits[name] = true
				continue
			}
			vi := &pb.ValueInfoProto{}
			if err := proto.Unmarshal(v, vi); err != nil {
				return nil, nil, fmt.Errorf("%s: graph io: %w", path, err)
			}
			if num == fieldGraphInput {
				ins = append(ins, vi)
			} else {
				outs = append(outs, vi)
			}
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, graph)
		if m < 0 {
			return nil, nil, fmt.Errorf("%s: graph: %w", path, protowire.ParseError(m))
		}
		graph = graph[m:]
	}
	for _, vi := range ins {
		if inits[vi.GetName()] {
			continue
		}
		io, err := ioInfo(vi)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: input %w", path, err)
		}
		inputs = append(inputs, io)
	}
	for _, vi := range outs {
		io, err := ioInfo(vi)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: output %w", path, err)
		}
		outputs = append(outputs, io)
	}
	return inputs, outputs, nil
}

// tensorName reads the name field of an encoded TensorProto without
// decoding its data.
func tensorName(b []byte) (string, error) {
	name := ""
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", protowire.ParseError(n)
		}
		b = b[n:]
		if num == fieldTensorName && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return "", protowire.ParseError(m)
			}
			name = string(v)
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return "", protowire.ParseError(m)
		}
		b = b[m:]
	}
	return name, nil
}

var dtypeFromONNX = map[pb.TensorProto_DataType]DType{
	pb.TensorProto_FLOAT: Float32, pb.TensorProto_DOUBLE: Float64, pb.TensorProto_FLOAT16: Float16,
	pb.TensorProto_BFLOAT16: BFloat16, pb.TensorProto_INT64: Int64, pb.TensorProto_INT32: Int32,
	pb.TensorProto_BOOL: Bool,
}

func ioInfo(vi *pb.ValueInfoProto) (IOInfo, error) {
	tt := vi.GetType().GetTensorType()
	if tt == nil {
		return IOInfo{}, fmt.Errorf("%s is not a tensor: only tensors are supported", vi.GetName())
	}
	et := pb.TensorProto_DataType(tt.GetElemType())
	dt, ok := dtypeFromONNX[et]
	if !ok {
		return IOInfo{}, fmt.Errorf("%s has element type %v, not supported by dartc's runtime", vi.GetName(), et)
	}
	io := IOInfo{Name: vi.GetName(), DType: dt, Dims: []int64{}, Params: []string{}, Unranked: tt.Shape == nil}
	for _, d := range tt.GetShape().GetDim() {
		if d.Value != nil {
			if v, ok := d.Value.(*pb.TensorShapeProto_Dimension_DimValue); ok {
				io.Dims = append(io.Dims, v.DimValue)
				io.Params = append(io.Params, "")
				continue
			}
		}
		io.Dims = append(io.Dims, -1)
		io.Params = append(io.Params, d.GetDimParam())
	}
	return io, nil
}

// findField returns the bytes of the last length-delimited field num of a
// message (protobuf merges repeated occurrences; ONNX writers emit one).
func findField(b []byte, num protowire.Number) ([]byte, error) {
	var found []byte
	for len(b) > 0 {
		n, typ, k := protowire.ConsumeTag(b)
		if k < 0 {
			return nil, fmt.Errorf("not an ONNX model: %w", protowire.ParseError(k))
		}
		b = b[k:]
		if n == num && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return nil, fmt.Errorf("not an ONNX model: %w", protowire.ParseError(m))
			}
			found = v
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(n, typ, b)
		if m < 0 {
			return nil, fmt.Errorf("not an ONNX model: %w", protowire.ParseError(m))
		}
		b = b[m:]
	}
	if found == nil {
		return nil, fmt.Errorf("not an ONNX model: no graph")
	}
	return found, nil
}
