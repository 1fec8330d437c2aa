package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"unicode/utf8"

	"github.com/dartc/dartc/internal/atomicfile"
)

// MaxHeaderSize bounds the JSON header, as the reference implementation does,
// so that a corrupt length cannot make Read allocate gigabytes.
const MaxHeaderSize = 100 << 20

const metadataKey = "__metadata__"

// Errors callers may test with errors.Is.
var (
	ErrHeaderTooLarge = errors.New("safetensors: header too large")
	ErrTruncated      = errors.New("safetensors: file truncated")
	ErrBadHeader      = errors.New("safetensors: malformed header")
	ErrBadDType       = errors.New("safetensors: unsupported dtype")
	ErrBadOffsets     = errors.New("safetensors: bad data offsets")
	ErrSizeMismatch   = errors.New("safetensors: size mismatch")
	ErrDuplicate      = errors.New("safetensors: duplicate tensor name")
	ErrNotFound       = errors.New("safetensors: tensor not found")
)

// Tensor is one named tensor: element type, shape (row-major) and raw
// little-endian bytes.
type Tensor struct {
	Name  string
	DType DType
	Shape []int64
	Data  []byte
}

// NumElements returns the product of the shape (1 for a scalar), or -1 if a
// dimension is negative or the product overflows.
func (t Tensor) NumElements() int64 { return numElements(t.Shape) }

func numElements(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return -1
		}
		if d != 0 && n > math.MaxInt64/d {
			return -1
		}
		n *= d
	}
	return n
}

// File is a parsed safetensors file.
type File struct {
	Metadata map[string]string
	Tensors  []Tensor // in data order
}

// Get returns the tensor with the given name.
func (f *File) Get(name string) (Tensor, error) {
	for _, t := range f.Tensors {
		if t.Name == name {
			return t, nil
		}
	}
	return Tensor{}, fmt.Errorf("%w: %q", ErrNotFound, name)
}

// Read reads and validates the safetensors file at path.
func Read(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("safetensors: read %s: %w", path, err)
	}
	f, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return f, nil
}

type tensorInfo struct {
	DType       DType   `json:"dtype"`
	Shape       []int64 `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// Parse validates and decodes a whole safetensors file held in b. The
// returned tensors' Data alias b.
func Parse(b []byte) (*File, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: %d bytes, need at least 8 for the header length", ErrTruncated, len(b))
	}
	// Every safetensors header is a JSON object right after the length: a
	// file that is something else (a text file, a .bin checkpoint) is named
	// as such rather than by the absurd length its first bytes make.
	if len(b) > 8 && b[8] != '{' {
		return nil, fmt.Errorf("%w: not a safetensors file (byte 8 is %q; a safetensors file starts with an 8-byte header length and a JSON object)", ErrBadHeader, b[8])
	}
	n := binary.LittleEndian.Uint64(b[:8])
	if n > MaxHeaderSize {
		return nil, fmt.Errorf("%w: %d bytes (limit %d)", ErrHeaderTooLarge, n, MaxHeaderSize)
	}
	if n > uint64(len(b)-8) {
		return nil, fmt.Errorf("%w: header length %d but only %d bytes follow", ErrTruncated, n, len(b)-8)
	}
	header := b[8 : 8+n]
	data := b[8+n:]
	f := &File{Metadata: map[string]string{}}
	infos, names, err := parseHeader(header, f.Metadata)
	if err != nil {
		return nil, err
	}
	order := make([]int, len(names))
	for i := range order {
		order[i] = i
	}
	// Sort by (begin, end): an empty tensor shares its begin with the next
	// tensor and must come first for the tiling check.
	sort.SliceStable(order, func(i, j int) bool {
		a, b := infos[order[i]].DataOffsets, infos[order[j]].DataOffsets
		return a[0] < b[0] || a[0] == b[0] && a[1] < b[1]
	})
	var next int64
	for _, i := range order {
		info, name := infos[i], names[i]
		begin, end := info.DataOffsets[0], info.DataOffsets[1]
		switch {
		case begin < next:
			return nil, fmt.Errorf("%w: tensor %q begins at %d, inside the previous tensor (ends at %d)", ErrBadOffsets, name, begin, next)
		case begin > next:
			return nil, fmt.Errorf("%w: gap of %d bytes before tensor %q (begins at %d, previous ends at %d)", ErrBadOffsets, begin-next, name, begin, next)
		case end > int64(len(data)):
			return nil, fmt.Errorf("%w: tensor %q ends at %d, past the data section (%d bytes)", ErrBadOffsets, name, end, len(data))
		}
		want := numElements(info.Shape) * info.DType.Size()
		if end-begin != want {
			return nil, fmt.Errorf("%w: tensor %q is %s %v (%d bytes) but its offsets span %d bytes", ErrSizeMismatch, name, info.DType, info.Shape, want, end-begin)
		}
		f.Tensors = append(f.Tensors, Tensor{Name: name, DType: info.DType, Shape: info.Shape, Data: data[begin:end:end]})
		next = end
	}
	if next != int64(len(data)) {
		return nil, fmt.Errorf("%w: %d bytes after the last tensor", ErrBadOffsets, int64(len(data))-next)
	}
	return f, nil
}

// parseHeader decodes the header object key by key, keeping file order and
// rejecting duplicate keys (a plain map decode would silently keep the last).
func parseHeader(header []byte, metadata map[string]string) ([]tensorInfo, []string, error) {
	trimmed := bytes.TrimRight(header, " ")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, nil, fmt.Errorf("%w: header does not start with '{'", ErrBadHeader)
	}
	// encoding/json would replace invalid UTF-8 in a name with U+FFFD.
	if !utf8.Valid(trimmed) {
		return nil, nil, fmt.Errorf("%w: header is not valid UTF-8", ErrBadHeader)
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if _, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadHeader, err)
	}
	var infos []tensorInfo
	var names []string
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrBadHeader, err)
		}
		key := tok.(string) // object keys are always strings
		if seen[key] {
			if key == metadataKey {
				return nil, nil, fmt.Errorf("%w: %q appears twice", ErrBadHeader, key)
			}
			return nil, nil, fmt.Errorf("%w: %q", ErrDuplicate, key)
		}
		seen[key] = true
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, fmt.Errorf("%w: value of %q: %v", ErrBadHeader, key, err)
		}
		if key == metadataKey {
			fields, err := objectFields(raw)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: %s must map strings to strings: %v", ErrBadHeader, metadataKey, err)
			}
			for k, v := range fields {
				var sv string
				if err := json.Unmarshal(v, &sv); err != nil {
					return nil, nil, fmt.Errorf("%w: %s must map strings to strings: %q: %v", ErrBadHeader, metadataKey, k, err)
				}
				metadata[k] = sv
			}
			continue
		}
		info, err := decodeInfo(key, raw)
		if err != nil {
			return nil, nil, err
		}
		infos = append(infos, info)
		names = append(names, key)
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadHeader, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, fmt.Errorf("%w: trailing content after the header object", ErrBadHeader)
	}
	return infos, names, nil
}

// objectFields splits a JSON object into its fields, refusing a repeated
// key (encoding/json would keep the last one).
func objectFields(raw []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, errors.New("not a JSON object")
	}
	fields := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key := tok.(string)
		if _, dup := fields[key]; dup {
			return nil, fmt.Errorf("key %q appears twice", key)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		fields[key] = v
	}
	return fields, nil
}

// decodeInfo decodes a tensor's entry, whose keys must be exactly dtype,
// shape and data_offsets (encoding/json alone would also take "DTYPE" or a
// repeated key).
func decodeInfo(name string, raw json.RawMessage) (tensorInfo, error) {
	var info tensorInfo
	fields, err := objectFields(raw)
	if err != nil {
		return info, fmt.Errorf("%w: tensor %q: %v", ErrBadHeader, name, err)
	}
	for k, v := range fields {
		var dst any
		switch k {
		case "dtype":
			dst = &info.DType
		case "shape":
			dst = &info.Shape
		case "data_offsets":
			dst = &info.DataOffsets
		default:
			return info, fmt.Errorf("%w: tensor %q: unknown key %q (want dtype, shape and data_offsets)", ErrBadHeader, name, k)
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return info, fmt.Errorf("%w: tensor %q: %s: %v", ErrBadHeader, name, k, err)
		}
	}
	if info.Shape == nil || info.DataOffsets == nil || info.DType == "" {
		return info, fmt.Errorf("%w: tensor %q needs dtype, shape and data_offsets", ErrBadHeader, name)
	}
	if err := checkDType(info.DType); err != nil {
		return info, fmt.Errorf("tensor %q: %w", name, err)
	}
	if numElements(info.Shape) < 0 {
		return info, fmt.Errorf("%w: tensor %q has shape %v (negative dimension or too many elements)", ErrBadHeader, name, info.Shape)
	}
	if numElements(info.Shape) > math.MaxInt64/info.DType.Size() {
		return info, fmt.Errorf("%w: tensor %q of shape %v is too large", ErrBadHeader, name, info.Shape)
	}
	if len(info.DataOffsets) != 2 || info.DataOffsets[0] < 0 || info.DataOffsets[1] < info.DataOffsets[0] {
		return info, fmt.Errorf("%w: tensor %q has data_offsets %v, want [begin, end] with 0 <= begin <= end", ErrBadOffsets, name, info.DataOffsets)
	}
	return info, nil
}

// Encode returns the bytes of a safetensors file holding tensors (data in
// the given order) and metadata (nil for none).
func Encode(tensors []Tensor, metadata map[string]string) ([]byte, error) {
	for _, t := range tensors {
		if err := checkTensor(t); err != nil {
			return nil, err
		}
	}
	hdr, size, err := encodeHeader(tensors, metadata)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, int64(len(hdr))+size)
	out = append(out, hdr...)
	for _, t := range tensors {
		out = append(out, t.Data...)
	}
	return out, nil
}

// encodeHeader returns the length prefix and the padded JSON header of a
// file holding tensors (whose Data lengths follow from dtype and shape),
// and the size of the data section.
func encodeHeader(tensors []Tensor, metadata map[string]string) ([]byte, int64, error) {
	var hdr bytes.Buffer
	hdr.WriteByte('{')
	if len(metadata) > 0 {
		m, err := json.Marshal(metadata) // keys sorted: deterministic output
		if err != nil {
			return nil, 0, fmt.Errorf("safetensors: encode metadata: %w", err)
		}
		hdr.WriteString(`"` + metadataKey + `":`)
		hdr.Write(m)
	}
	seen := map[string]bool{}
	var offset int64
	for i, t := range tensors {
		if seen[t.Name] {
			return nil, 0, fmt.Errorf("%w: %q", ErrDuplicate, t.Name)
		}
		seen[t.Name] = true
		name, _ := json.Marshal(t.Name)
		shape := t.Shape
		if shape == nil {
			shape = []int64{}
		}
		size := numElements(t.Shape) * t.DType.Size()
		info, _ := json.Marshal(tensorInfo{DType: t.DType, Shape: shape, DataOffsets: []int64{offset, offset + size}})
		if i > 0 || len(metadata) > 0 {
			hdr.WriteByte(',')
		}
		hdr.Write(name)
		hdr.WriteByte(':')
		hdr.Write(info)
		offset += size
	}
	hdr.WriteByte('}')
	for hdr.Len()%8 != 0 {
		hdr.WriteByte(' ')
	}
	if hdr.Len() > MaxHeaderSize {
		return nil, 0, fmt.Errorf("%w: %d bytes (limit %d)", ErrHeaderTooLarge, hdr.Len(), MaxHeaderSize)
	}
	out := make([]byte, 8, 8+hdr.Len())
	binary.LittleEndian.PutUint64(out, uint64(hdr.Len()))
	return append(out, hdr.Bytes()...), offset, nil
}

func checkTensor(t Tensor) error {
	if t.Name == "" || t.Name == metadataKey {
		return fmt.Errorf("%w: tensor name %q is reserved or empty", ErrBadHeader, t.Name)
	}
	if err := checkDType(t.DType); err != nil {
		return fmt.Errorf("tensor %q: %w", t.Name, err)
	}
	n := numElements(t.Shape)
	if n < 0 {
		return fmt.Errorf("%w: tensor %q has shape %v (negative dimension or too many elements)", ErrBadHeader, t.Name, t.Shape)
	}
	if n > math.MaxInt64/t.DType.Size() || n*t.DType.Size() != int64(len(t.Data)) {
		return fmt.Errorf("%w: tensor %q is %s %v, which needs %d elements of %d bytes, but has %d bytes of data",
			ErrSizeMismatch, t.Name, t.DType, t.Shape, n, t.DType.Size(), len(t.Data))
	}
	return nil
}

// Write writes tensors and metadata to path atomically: the bytes go to a
// temporary file in the same directory, which is synced and renamed over path.
func Write(path string, tensors []Tensor, metadata map[string]string) error {
	b, err := Encode(tensors, metadata)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, b); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	return nil
}
