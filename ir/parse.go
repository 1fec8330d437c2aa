package ir

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dartc/dartc/ir/onnxpb"
	"google.golang.org/protobuf/proto"
)

// Errors callers test for.
var (
	// ErrNotONNX reports a file that does not parse as an ONNX model.
	ErrNotONNX = errors.New("ir: not an ONNX model")
	// ErrExternalData reports an invalid external-data reference.
	ErrExternalData = errors.New("ir: invalid external data")
	// ErrTensorSize: a tensor's declared dims give more elements or bytes
	// than an int64 holds.
	ErrTensorSize = errors.New("ir: tensor size overflows int64")
)

// Load parses the ONNX model at path. External data is validated but not
// read.
func Load(path string) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ir: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("ir: %w", err)
	}
	return Parse(b, abs)
}

// Parse decodes a serialized ModelProto. path names the model file; its
// folder anchors external data ("" refuses external data).
func Parse(b []byte, path string) (*Model, error) {
	var pb onnxpb.ModelProto
	if err := proto.Unmarshal(b, &pb); err != nil {
		return nil, fmt.Errorf("%w: %s: %v (is it a truncated or non-ONNX file?)", ErrNotONNX, displayPath(path), err)
	}
	if pb.Graph == nil || pb.IrVersion == nil {
		return nil, fmt.Errorf("%w: %s has no graph or no ir_version", ErrNotONNX, displayPath(path))
	}
	m := &Model{
		IRVersion:       pb.GetIrVersion(),
		ProducerName:    pb.GetProducerName(),
		ProducerVersion: pb.GetProducerVersion(),
		Domain:          pb.GetDomain(),
		ModelVersion:    pb.GetModelVersion(),
		Doc:             pb.GetDocString(),
		Metadata:        kvsFromPB(pb.MetadataProps),
		Functions:       pb.Functions,
		Path:            path,
	}
	for _, o := range pb.OpsetImport {
		m.Opsets = append(m.Opsets, Opset{Domain: o.GetDomain(), Version: o.GetVersion()})
	}
	dir := ""
	if path != "" {
		dir = filepath.Dir(path)
	}
	g, err := graphFromPB(pb.Graph, dir)
	if err != nil {
		return nil, fmt.Errorf("ir: %s: %w", displayPath(path), err)
	}
	// Some exporters (onnxruntime-genai's builder among them) write nodes
	// out of order; the IR keeps them sorted.
	if err := TopoSort(g); err != nil {
		return nil, fmt.Errorf("ir: %s: %w", displayPath(path), err)
	}
	m.Graph = g
	return m, nil
}

func displayPath(p string) string {
	if p == "" {
		return "<bytes>"
	}
	return p
}

func kvsFromPB(entries []*onnxpb.StringStringEntryProto) []KV {
	var kvs []KV
	for _, e := range entries {
		kvs = append(kvs, KV{e.GetKey(), e.GetValue()})
	}
	return kvs
}

// GraphFromProto converts a sub-graph (the body of an If, Loop or Scan
// attribute) to a Graph; external data locations resolve against dir.
func GraphFromProto(pb *onnxpb.GraphProto, dir string) (*Graph, error) { return graphFromPB(pb, dir) }

func graphFromPB(pb *onnxpb.GraphProto, dir string) (*Graph, error) {
	g := &Graph{Name: pb.GetName(), Doc: pb.GetDocString(), Metadata: kvsFromPB(pb.MetadataProps)}
	for _, v := range pb.Input {
		g.Inputs = append(g.Inputs, valueInfoFromPB(v))
	}
	for _, v := range pb.Output {
		g.Outputs = append(g.Outputs, valueInfoFromPB(v))
	}
	for _, v := range pb.ValueInfo {
		g.ValueInfo = append(g.ValueInfo, valueInfoFromPB(v))
	}
	if len(pb.SparseInitializer) > 0 {
		return nil, fmt.Errorf("sparse initializers are not supported (%d found); densify them before compiling", len(pb.SparseInitializer))
	}
	for _, t := range pb.Initializer {
		tt, err := TensorFromPB(t, dir)
		if err != nil {
			return nil, err
		}
		g.Initializers = append(g.Initializers, tt)
	}
	for _, n := range pb.Node {
		if err := checkAttrData(n, dir); err != nil {
			return nil, err
		}
		g.Nodes = append(g.Nodes, &Node{
			Name: n.GetName(), OpType: n.GetOpType(), Domain: n.GetDomain(), Overload: n.GetOverload(),
			Inputs: n.Input, Outputs: n.Output, Attrs: n.Attribute, Doc: n.GetDocString(),
			Metadata: kvsFromPB(n.MetadataProps),
		})
	}
	return g, nil
}

// checkAttrData validates the external-data references that a node's
// attributes hold (a Constant's tensor, the initializers of an If, Loop or
// Scan body) as those of the graph's own initializers: attributes stay
// protobuf, so they would otherwise reach ONNX Runtime unchecked.
func checkAttrData(n *onnxpb.NodeProto, dir string) error {
	for _, a := range n.Attribute {
		tensors := a.GetTensors()
		if a.GetT() != nil {
			tensors = append([]*onnxpb.TensorProto{a.GetT()}, tensors...)
		}
		for _, t := range tensors {
			if t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
				if _, err := TensorFromPB(t, dir); err != nil {
					return fmt.Errorf("node %q attribute %q: %w", n.GetName(), a.GetName(), err)
				}
			}
		}
		graphs := a.GetGraphs()
		if a.GetG() != nil {
			graphs = append([]*onnxpb.GraphProto{a.GetG()}, graphs...)
		}
		for _, sub := range graphs {
			if _, err := graphFromPB(sub, dir); err != nil {
				return fmt.Errorf("node %q attribute %q: %w", n.GetName(), a.GetName(), err)
			}
		}
	}
	return nil
}

func valueInfoFromPB(v *onnxpb.ValueInfoProto) *ValueInfo {
	return &ValueInfo{Name: v.GetName(), Type: typeFromPB(v.GetType()), Doc: v.GetDocString()}
}

func typeFromPB(tp *onnxpb.TypeProto) *Type {
	tt := tp.GetTensorType()
	if tt == nil {
		return nil
	}
	t := &Type{DType: DType(tt.GetElemType())}
	if tt.Shape != nil {
		t.Shape = true
		for _, d := range tt.Shape.Dim {
			switch {
			case d.GetDimParam() != "":
				t.Dims = append(t.Dims, Sym(d.GetDimParam()))
			case d.Value != nil:
				t.Dims = append(t.Dims, Dim{Value: d.GetDimValue()})
			default:
				t.Dims = append(t.Dims, Dim{Value: -1})
			}
		}
	}
	return t
}

// TensorFromPB converts a TensorProto; dir anchors external data.
func TensorFromPB(t *onnxpb.TensorProto, dir string) (*Tensor, error) {
	out := &Tensor{Name: t.GetName(), DType: DType(t.GetDataType()), Dims: t.Dims, Doc: t.GetDocString()}
	n := int64(1)
	for _, d := range t.Dims {
		if d < 0 {
			return nil, fmt.Errorf("tensor %q has a negative dimension %v", out.Name, t.Dims)
		}
		if d != 0 && n > math.MaxInt64/d {
			return nil, fmt.Errorf("%w: tensor %q: dims %v hold more than 2^63 elements (overflow); the model is corrupt", ErrTensorSize, out.Name, t.Dims)
		}
		n *= d
	}
	if sz := int64(out.DType.Size()); sz > 0 && n > math.MaxInt64/sz {
		return nil, fmt.Errorf("%w: tensor %q: %v %s is more than 2^63 bytes (overflow); the model is corrupt", ErrTensorSize, out.Name, t.Dims, out.DType)
	}
	if t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL {
		ext, err := externalFromPB(out, t.ExternalData, dir)
		if err != nil {
			return nil, err
		}
		out.External = ext
		return out, nil
	}
	raw, err := rawFromTyped(t, out)
	if err != nil {
		return nil, err
	}
	out.Raw = raw
	return out, nil
}

// rawFromTyped returns a tensor's inline data as raw little-endian bytes,
// converting the typed repeated fields when raw_data is absent.
func rawFromTyped(t *onnxpb.TensorProto, out *Tensor) ([]byte, error) {
	n := out.NumElements()
	sz := int64(out.DType.Size())
	if t.RawData != nil {
		if sz > 0 && int64(len(t.RawData)) != n*sz {
			return nil, fmt.Errorf("tensor %q: raw_data has %d bytes, %v %s needs %d", out.Name, len(t.RawData), out.Dims, out.DType, n*sz)
		}
		return t.RawData, nil
	}
	var b []byte
	switch out.DType {
	case Float32:
		for _, v := range t.FloatData {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
	case Float64:
		for _, v := range t.DoubleData {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		}
	case Int64:
		for _, v := range t.Int64Data {
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		}
	case Uint64, Uint32:
		for _, v := range t.Uint64Data {
			if out.DType == Uint32 {
				b = binary.LittleEndian.AppendUint32(b, uint32(v))
			} else {
				b = binary.LittleEndian.AppendUint64(b, v)
			}
		}
	case Int32, Int16, Int8, Uint16, Uint8, Bool, Float16, BFloat16:
		for _, v := range t.Int32Data {
			switch out.DType.Size() {
			case 4:
				b = binary.LittleEndian.AppendUint32(b, uint32(v))
			case 2:
				b = binary.LittleEndian.AppendUint16(b, uint16(v))
			case 1:
				b = append(b, byte(v))
			}
		}
	case String:
		return nil, fmt.Errorf("tensor %q: string tensors are not supported", out.Name)
	default:
		return nil, fmt.Errorf("tensor %q: unsupported data type %s", out.Name, out.DType)
	}
	if int64(len(b)) != n*sz {
		return nil, fmt.Errorf("tensor %q: has %d bytes of data, %v %s needs %d", out.Name, len(b), out.Dims, out.DType, n*sz)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

func externalFromPB(t *Tensor, entries []*onnxpb.StringStringEntryProto, dir string) (*External, error) {
	ext := &External{Offset: 0, Length: -1}
	for _, e := range entries {
		switch e.GetKey() {
		case "location":
			ext.Location = e.GetValue()
		case "offset", "length":
			v, err := strconv.ParseInt(e.GetValue(), 10, 64)
			if err != nil || v < 0 {
				return nil, fmt.Errorf("%w: tensor %q: %s %q is not a non-negative integer", ErrExternalData, t.Name, e.GetKey(), e.GetValue())
			}
			if e.GetKey() == "offset" {
				ext.Offset = v
			} else {
				ext.Length = v
			}
		}
	}
	if ext.Location == "" {
		return nil, fmt.Errorf("%w: tensor %q has no location", ErrExternalData, t.Name)
	}
	if dir == "" {
		return nil, fmt.Errorf("%w: tensor %q: a model read from bytes cannot use external data", ErrExternalData, t.Name)
	}
	loc := filepath.FromSlash(ext.Location)
	if filepath.IsAbs(loc) || strings.HasPrefix(ext.Location, "/") || filepath.VolumeName(loc) != "" {
		return nil, fmt.Errorf("%w: tensor %q: location %q is absolute; external data must sit in the model's folder %s",
			ErrExternalData, t.Name, ext.Location, dir)
	}
	clean := filepath.Clean(loc)
	if clean == ".." || strings.HasPrefix(clean, ".."+string(filepath.Separator)) {
		return nil, fmt.Errorf("%w: tensor %q: location %q leaves the model's folder %s", ErrExternalData, t.Name, ext.Location, dir)
	}
	ext.File = filepath.Join(dir, clean)
	st, err := os.Stat(ext.File)
	if err != nil {
		return nil, fmt.Errorf("%w: tensor %q: data file %s: %v (it must be next to the model)", ErrExternalData, t.Name, ext.File, err)
	}
	// A link inside the folder that resolves outside it escapes too, and
	// ONNX Runtime refuses it.
	if real, err := filepath.EvalSymlinks(ext.File); err == nil {
		if realDir, err := filepath.EvalSymlinks(dir); err == nil {
			if rel, err := filepath.Rel(realDir, real); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				return nil, fmt.Errorf("%w: tensor %q: data file %s is a link to %s, outside the model's folder %s; copy the file next to the model",
					ErrExternalData, t.Name, ext.File, real, dir)
			}
		}
	}
	need := t.ByteSize()
	if ext.Length < 0 {
		ext.Length = need
	} else if t.DType.Size() > 0 && ext.Length != need {
		return nil, fmt.Errorf("%w: tensor %q: length %d, but %v %s needs %d bytes", ErrExternalData, t.Name, ext.Length, t.Dims, t.DType, need)
	}
	if ext.Offset > st.Size() || ext.Length > st.Size()-ext.Offset { // no overflow: both are ≥ 0
		return nil, fmt.Errorf("%w: tensor %q: offset %d + length %d is past the end of %s (%d bytes); the data file is truncated or belongs to another model",
			ErrExternalData, t.Name, ext.Offset, ext.Length, ext.File, st.Size())
	}
	return ext, nil
}
