package runtime

import (
	"fmt"
	"os"

	pb "github.com/dartc/dartc/compiler/onnxpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Field numbers from onnx.proto: ModelProto.graph, GraphProto.input/output.
const (
	fieldModelGraph  = 7
	fieldGraphInput  = 11
	fieldGraphOutput = 12
)

// graphDims reads the symbolic dim names of a model's graph inputs and
// outputs: name → one entry per dim, "" where the dim is fixed or unnamed.
// It walks the protobuf wire format and decodes only the graph's input and
// output value infos, so inline weights are skipped, never copied.
func graphDims(path string) (map[string][]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	graph, err := findField(b, fieldModelGraph)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	dims := map[string][]string{}
	for len(graph) > 0 {
		num, typ, n := protowire.ConsumeTag(graph)
		if n < 0 {
			return nil, fmt.Errorf("%s: graph: %w", path, protowire.ParseError(n))
		}
		graph = graph[n:]
		if typ == protowire.BytesType && (num == fieldGraphInput || num == fieldGraphOutput) {
			v, m := protowire.ConsumeBytes(graph)
			if m < 0 {
				return nil, fmt.Errorf("%s: graph io: %w", path, protowire.ParseError(m))
			}
			var vi pb.ValueInfoProto
			if err := proto.Unmarshal(v, &vi); err != nil {
				return nil, fmt.Errorf("%s: graph io: %w", path, err)
			}
			var names []string
			for _, d := range vi.GetType().GetTensorType().GetShape().GetDim() {
				names = append(names, d.GetDimParam())
			}
			dims[vi.GetName()] = names
			graph = graph[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, graph)
		if m < 0 {
			return nil, fmt.Errorf("%s: graph: %w", path, protowire.ParseError(m))
		}
		graph = graph[m:]
	}
	return dims, nil
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
