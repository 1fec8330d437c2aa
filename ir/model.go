package ir

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"sync/atomic"

	"github.com/dartc/dartc/internal/float16"

	"github.com/dartc/dartc/ir/onnxpb"
)

// Model is an ONNX model: a main graph, opset imports, model-local
// functions and metadata.
type Model struct {
	IRVersion       int64
	Opsets          []Opset
	ProducerName    string
	ProducerVersion string
	Domain          string
	ModelVersion    int64
	Doc             string
	Metadata        []KV
	Graph           *Graph
	Functions       []*onnxpb.FunctionProto

	// Path is the file the model was parsed from ("" for a built model);
	// external data locations are resolved against its folder.
	Path string
}

// Opset is an operator set import.
type Opset struct {
	Domain  string // "" is the default ONNX domain
	Version int64
}

// KV is a metadata entry.
type KV struct{ Key, Value string }

// OpsetVersion returns the imported version of domain ("" or "ai.onnx" for
// the default domain), or 0 when it is not imported.
func (m *Model) OpsetVersion(domain string) int64 {
	if domain == "ai.onnx" {
		domain = ""
	}
	for _, o := range m.Opsets {
		d := o.Domain
		if d == "ai.onnx" {
			d = ""
		}
		if d == domain {
			return o.Version
		}
	}
	return 0
}

// SetOpset imports domain at version, replacing an existing import.
func (m *Model) SetOpset(domain string, version int64) {
	for i := range m.Opsets {
		if m.Opsets[i].Domain == domain {
			m.Opsets[i].Version = version
			return
		}
	}
	m.Opsets = append(m.Opsets, Opset{Domain: domain, Version: version})
}

// MetadataValue returns the value of a model metadata key.
func (m *Model) MetadataValue(key string) (string, bool) {
	for _, kv := range m.Metadata {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// SetMetadata sets a model metadata key.
func (m *Model) SetMetadata(key, value string) {
	for i := range m.Metadata {
		if m.Metadata[i].Key == key {
			m.Metadata[i].Value = value
			return
		}
	}
	m.Metadata = append(m.Metadata, KV{key, value})
}

// IRVersionForOpset is the IR version that goes with a default-domain opset
// (onnx/helper.py VERSION_TABLE).
func IRVersionForOpset(opset int64) int64 {
	switch {
	case opset <= 8:
		return 3
	case opset <= 9:
		return 4
	case opset <= 10:
		return 5
	case opset <= 11:
		return 6
	case opset <= 14:
		return 7
	case opset <= 18:
		return 8
	case opset <= 20:
		return 9
	case opset <= 22:
		return 10
	case opset <= 24:
		return 11
	}
	return 12
}

// Graph is a computation graph.
type Graph struct {
	Name         string
	Doc          string
	Inputs       []*ValueInfo
	Outputs      []*ValueInfo
	ValueInfo    []*ValueInfo
	Nodes        []*Node
	Initializers []*Tensor
	Metadata     []KV
}

// Initializer returns the named initializer or nil.
func (g *Graph) Initializer(name string) *Tensor {
	for _, t := range g.Initializers {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Input returns the named graph input or nil.
func (g *Graph) Input(name string) *ValueInfo {
	for _, v := range g.Inputs {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// Output returns the named graph output or nil.
func (g *Graph) Output(name string) *ValueInfo {
	for _, v := range g.Outputs {
		if v.Name == name {
			return v
		}
	}
	return nil
}

// Node is one operator application.
type Node struct {
	Name     string
	OpType   string
	Domain   string // "" for the default ONNX domain
	Overload string
	Inputs   []string // "" marks an omitted optional input
	Outputs  []string
	Attrs    []*onnxpb.AttributeProto
	Doc      string
	Metadata []KV
}

// Attr returns the named attribute or nil.
func (n *Node) Attr(name string) *onnxpb.AttributeProto {
	for _, a := range n.Attrs {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

// AttrInt returns an int attribute, or def when absent.
func (n *Node) AttrInt(name string, def int64) int64 {
	if a := n.Attr(name); a != nil {
		return a.GetI()
	}
	return def
}

// AttrFloat returns a float attribute, or def when absent.
func (n *Node) AttrFloat(name string, def float32) float32 {
	if a := n.Attr(name); a != nil {
		return a.GetF()
	}
	return def
}

// AttrInts returns an ints attribute, or nil when absent.
func (n *Node) AttrInts(name string) []int64 {
	if a := n.Attr(name); a != nil {
		return a.GetInts()
	}
	return nil
}

// AttrString returns a string attribute, or def when absent.
func (n *Node) AttrString(name, def string) string {
	if a := n.Attr(name); a != nil {
		return string(a.GetS())
	}
	return def
}

// MetadataValue returns a node metadata value.
func (n *Node) MetadataValue(key string) (string, bool) {
	for _, kv := range n.Metadata {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// Input returns input i or "" when absent.
func (n *Node) Input(i int) string {
	if i < len(n.Inputs) {
		return n.Inputs[i]
	}
	return ""
}

// String is a short description for error messages.
func (n *Node) String() string {
	op := n.OpType
	if n.Domain != "" {
		op = n.Domain + ":" + op
	}
	return fmt.Sprintf("%s node %q", op, n.Name)
}

// Tensor is an initializer or constant: inline bytes or an external-data
// reference that is read only on demand.
type Tensor struct {
	Name  string
	DType DType
	Dims  []int64
	Doc   string

	// Raw holds inline data as little-endian bytes; nil when External is set.
	Raw []byte
	// External is the reference to data in another file, or nil.
	External *External
}

// External locates a tensor's bytes in an external data file.
type External struct {
	// Location is the path relative to the model's folder, as written in
	// the model.
	Location string
	// File is the resolved path of the data file on this machine.
	File   string
	Offset int64
	Length int64
}

// NumElements is the product of the dims.
func (t *Tensor) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// ByteSize is the size of the data in bytes (fixed-size types only).
func (t *Tensor) ByteSize() int64 { return t.NumElements() * int64(t.DType.Size()) }

// externalReads counts external-data reads, so that tests can prove that a
// pass pipeline never touches weight bytes.
var externalReads atomic.Int64

// ExternalReads reports how many times external tensor data was read.
func ExternalReads() int64 { return externalReads.Load() }

// Bytes returns the tensor's little-endian data, reading external data from
// disk when needed.
func (t *Tensor) Bytes() ([]byte, error) {
	if t.External == nil {
		return t.Raw, nil
	}
	externalReads.Add(1)
	f, err := os.Open(t.External.File)
	if err != nil {
		return nil, fmt.Errorf("ir: tensor %q: %w", t.Name, err)
	}
	defer f.Close()
	buf := make([]byte, t.External.Length)
	// ReadAt reports io.EOF when it read fewer bytes than asked: a file
	// shorter than the model declares (changed since it was loaded) is an
	// error, not zeros.
	if n, err := f.ReadAt(buf, t.External.Offset); n < len(buf) {
		return nil, fmt.Errorf("ir: tensor %q: %s holds %d of its %d bytes at offset %d (%v): the data file is shorter than the model declares; restore it or re-export the model",
			t.Name, t.External.File, n, len(buf), t.External.Offset, err)
	}
	return buf, nil
}

// Float64s decodes a floating-point or integer tensor into float64s.
func (t *Tensor) Float64s() ([]float64, error) {
	b, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	n := int(t.NumElements())
	if sz := t.DType.Size(); sz == 0 || len(b) != n*sz {
		return nil, fmt.Errorf("ir: tensor %q: %d bytes for %d elements of %s", t.Name, len(b), n, t.DType)
	}
	out := make([]float64, n)
	for i := range out {
		switch t.DType {
		case Float32:
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
		case Float64:
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
		case Float16:
			out[i] = float64(float16.ToFloat32(binary.LittleEndian.Uint16(b[2*i:])))
		case BFloat16:
			out[i] = float64(math.Float32frombits(uint32(binary.LittleEndian.Uint16(b[2*i:])) << 16))
		case Int64:
			out[i] = float64(int64(binary.LittleEndian.Uint64(b[8*i:])))
		case Int32:
			out[i] = float64(int32(binary.LittleEndian.Uint32(b[4*i:])))
		case Int8:
			out[i] = float64(int8(b[i]))
		case Uint8, Bool:
			out[i] = float64(b[i])
		default:
			return nil, fmt.Errorf("ir: tensor %q: cannot decode %s", t.Name, t.DType)
		}
	}
	return out, nil
}

// Int64s decodes an integer tensor.
func (t *Tensor) Int64s() ([]int64, error) {
	if t.DType != Int64 && t.DType != Int32 {
		return nil, fmt.Errorf("ir: tensor %q is %s, not an integer tensor", t.Name, t.DType)
	}
	b, err := t.Bytes()
	if err != nil {
		return nil, err
	}
	n := int(t.NumElements())
	if len(b) != n*t.DType.Size() {
		return nil, fmt.Errorf("ir: tensor %q: %d bytes for %d elements of %s", t.Name, len(b), n, t.DType)
	}
	out := make([]int64, n)
	for i := range out {
		if t.DType == Int64 {
			out[i] = int64(binary.LittleEndian.Uint64(b[8*i:]))
		} else {
			out[i] = int64(int32(binary.LittleEndian.Uint32(b[4*i:])))
		}
	}
	return out, nil
}

// NewTensorF32 makes an inline float32 tensor.
func NewTensorF32(name string, dims []int64, data []float32) *Tensor {
	b := make([]byte, 4*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return &Tensor{Name: name, DType: Float32, Dims: dims, Raw: b}
}

// NewTensorF64 makes an inline float64 tensor.
func NewTensorF64(name string, dims []int64, data []float64) *Tensor {
	b := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
	}
	return &Tensor{Name: name, DType: Float64, Dims: dims, Raw: b}
}

// NewTensorI64 makes an inline int64 tensor.
func NewTensorI64(name string, dims []int64, data []int64) *Tensor {
	b := make([]byte, 8*len(data))
	for i, v := range data {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
	}
	return &Tensor{Name: name, DType: Int64, Dims: dims, Raw: b}
}

// NewScalar makes an inline scalar (rank 0) of a float or integer dtype.
func NewScalar(name string, dt DType, v float64) *Tensor {
	t := &Tensor{Name: name, DType: dt}
	switch dt {
	case Float32:
		t.Raw = binary.LittleEndian.AppendUint32(nil, math.Float32bits(float32(v)))
	case Float64:
		t.Raw = binary.LittleEndian.AppendUint64(nil, math.Float64bits(v))
	case Float16:
		t.Raw = binary.LittleEndian.AppendUint16(nil, float16.FromFloat32(float32(v)))
	case BFloat16:
		t.Raw = binary.LittleEndian.AppendUint16(nil, float16.BFloat16FromFloat32(float32(v)))
	case Int64:
		t.Raw = binary.LittleEndian.AppendUint64(nil, uint64(int64(v)))
	case Int32:
		t.Raw = binary.LittleEndian.AppendUint32(nil, uint32(int32(v)))
	case Bool:
		if v != 0 {
			t.Raw = []byte{1}
		} else {
			t.Raw = []byte{0}
		}
	default:
		panic(fmt.Sprintf("ir: NewScalar: unsupported dtype %s", dt))
	}
	return t
}

// As returns an inline copy of a float tensor converted to another float
// type (float32, float64, float16, bfloat16), rounding to nearest even.
func (t *Tensor) As(dt DType) *Tensor {
	if t.DType == dt {
		return t
	}
	vals, err := t.Float64s()
	if err != nil {
		panic("ir: As: " + err.Error())
	}
	out := &Tensor{Name: t.Name, DType: dt, Dims: t.Dims, Doc: t.Doc}
	for _, v := range vals {
		switch dt {
		case Float32:
			out.Raw = binary.LittleEndian.AppendUint32(out.Raw, math.Float32bits(float32(v)))
		case Float64:
			out.Raw = binary.LittleEndian.AppendUint64(out.Raw, math.Float64bits(v))
		case Float16:
			out.Raw = binary.LittleEndian.AppendUint16(out.Raw, float16.FromFloat32(float32(v)))
		case BFloat16:
			out.Raw = binary.LittleEndian.AppendUint16(out.Raw, float16.BFloat16FromFloat32(float32(v)))
		default:
			panic("ir: As: unsupported dtype " + dt.String())
		}
	}
	return out
}
