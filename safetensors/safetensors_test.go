package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dartc/dartc/internal/float16"
)

// TestReadPythonReference reads a file written by the Python safetensors
// package and compares every tensor with the literal values of generate.py.
func TestReadPythonReference(t *testing.T) {
	f, err := Read("testdata/python_reference.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"format": "np", "note": "made by generate.py"}; !reflect.DeepEqual(f.Metadata, want) {
		t.Errorf("metadata = %v, want %v", f.Metadata, want)
	}
	if len(f.Tensors) != 14 {
		t.Fatalf("got %d tensors, want 14", len(f.Tensors))
	}
	// Data order, as the header's data_offsets give it (see the file's header).
	var order []string
	for _, x := range f.Tensors {
		order = append(order, x.Name)
	}
	wantOrder := []string{"i64", "f64", "bf16_as_f32", "empty", "f16_as_f32", "f32", "scalar", "i32", "f16", "bf16_bits", "i16", "i8", "u8", "bool"}
	if !reflect.DeepEqual(order, wantOrder) {
		t.Errorf("tensor order = %v, want %v", order, wantOrder)
	}
	get := func(name string) Tensor {
		t.Helper()
		x, err := f.Get(name)
		if err != nil {
			t.Fatal(err)
		}
		return x
	}
	f64, err := get("f64").Float64s()
	if err != nil {
		t.Fatal(err)
	}
	if want := []float64{1.5, -2.25, 3.0, 0.1, 1e300, -1e-300}; !reflect.DeepEqual(f64, want) {
		t.Errorf("f64 = %v, want %v", f64, want)
	}
	if s := get("f64").Shape; !reflect.DeepEqual(s, []int64{2, 3}) {
		t.Errorf("f64 shape = %v", s)
	}
	f32, err := get("f32").Float32s()
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range f32 {
		if want := float32(i)/8 - 1; v != want {
			t.Errorf("f32[%d] = %v, want %v", i, v, want)
		}
	}
	if s := get("f32").Shape; !reflect.DeepEqual(s, []int64{2, 3, 4}) {
		t.Errorf("f32 shape = %v", s)
	}
	// F16 widening against numpy's astype(float32).
	half, err := get("f16").Float32s()
	if err != nil {
		t.Fatal(err)
	}
	halfRef, _ := get("f16_as_f32").Float32s()
	for i := range halfRef {
		if math.Float32bits(half[i]) != math.Float32bits(halfRef[i]) {
			t.Errorf("f16[%d] = %v, numpy says %v", i, half[i], halfRef[i])
		}
	}
	// BF16: numpy cannot write it, so the file holds the raw bits as U16.
	bits := get("bf16_bits")
	bits.DType = BF16
	bf, err := bits.Float32s()
	if err != nil {
		t.Fatal(err)
	}
	bfRef, _ := get("bf16_as_f32").Float32s()
	if !reflect.DeepEqual(bf, bfRef) {
		t.Errorf("bf16 = %v, want %v", bf, bfRef)
	}
	ints := map[string][]int64{
		"i64":  {-(1 << 62), -1, 0, 1, 1 << 62},
		"i32":  {-7, 8, math.MaxInt32, math.MinInt32},
		"i16":  {-32768, 32767},
		"i8":   {-128, 127, 0},
		"u8":   {0, 255},
		"bool": {1, 0, 1},
	}
	for name, want := range ints {
		got, err := get(name).Int64s()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	sc := get("scalar")
	if v, _ := sc.Float32s(); len(sc.Shape) != 0 || !reflect.DeepEqual(v, []float32{42}) {
		t.Errorf("scalar = %v shape %v", v, sc.Shape)
	}
	if e := get("empty"); e.NumElements() != 0 || !reflect.DeepEqual(e.Shape, []int64{0, 3}) {
		t.Errorf("empty = %+v", e)
	}
	if _, err := f.Get("missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(missing) err = %v", err)
	}
	if _, err := get("f32").Int64s(); err == nil {
		t.Error("Int64s of F32 succeeded")
	}
}

// TestRoundTrip writes with Write and reads back, and checks the layout
// against the format description byte by byte.
func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.safetensors")
	in := []Tensor{
		FromFloat32("w", []int64{2, 2}, []float32{1, 2, 3, -4}),
		FromInt64("ids", []int64{3}, []int64{-1, 0, 7}),
		FromFloat64("s", nil, []float64{math.Pi}),
		{Name: "z", DType: F16, Shape: []int64{0}, Data: nil},
		{Name: "b", DType: BOOL, Shape: []int64{1}, Data: []byte{1}},
	}
	meta := map[string]string{"rank": "8", "roles": "reason,tool"}
	if err := Write(path, in, meta); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	n := binary.LittleEndian.Uint64(raw)
	if n%8 != 0 {
		t.Errorf("header length %d is not a multiple of 8", n)
	}
	if raw[8] != '{' || strings.TrimRight(string(raw[8:8+n]), " ")[len(strings.TrimRight(string(raw[8:8+n]), " "))-1] != '}' {
		t.Errorf("header is not a space-padded JSON object: %q", raw[8:8+n])
	}
	wantData := 16 + 24 + 8 + 0 + 1
	if got := len(raw) - 8 - int(n); got != wantData {
		t.Errorf("data section is %d bytes, want %d", got, wantData)
	}
	if got := math.Float32frombits(binary.LittleEndian.Uint32(raw[8+n+12:])); got != -4 {
		t.Errorf("last element of w in the file = %v, want -4", got)
	}
	f, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(f.Metadata, meta) {
		t.Errorf("metadata = %v", f.Metadata)
	}
	for i, want := range in {
		got := f.Tensors[i]
		if got.Name != want.Name || got.DType != want.DType || !bytes.Equal(got.Data, want.Data) || numElements(got.Shape) != numElements(want.Shape) || len(got.Shape) != len(want.Shape) {
			t.Errorf("tensor %d = %+v, want %+v", i, got, want)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the output (temp file left behind?)", len(entries))
	}
}

func TestWriteRejects(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name    string
		tensors []Tensor
		want    error
	}{
		{"short data", []Tensor{{Name: "a", DType: F32, Shape: []int64{2}, Data: make([]byte, 7)}}, ErrSizeMismatch},
		{"bad dtype", []Tensor{{Name: "a", DType: "F8", Shape: []int64{1}, Data: make([]byte, 1)}}, ErrBadDType},
		{"duplicate", []Tensor{FromInt64("a", []int64{1}, []int64{1}), FromInt64("a", []int64{1}, []int64{2})}, ErrDuplicate},
		{"reserved name", []Tensor{FromInt64("__metadata__", []int64{1}, []int64{1})}, ErrBadHeader},
		{"negative dim", []Tensor{{Name: "a", DType: U8, Shape: []int64{-1}}}, ErrBadHeader},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, "x.safetensors")
			err := Write(path, c.tensors, nil)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if _, serr := os.Stat(path); !os.IsNotExist(serr) {
				t.Error("a rejected write left a file")
			}
		})
	}
}

// file builds raw bytes from a header string and a data length.
func file(header string, data int) []byte {
	b := make([]byte, 8, 8+len(header)+data)
	binary.LittleEndian.PutUint64(b, uint64(len(header)))
	b = append(b, header...)
	return append(b, make([]byte, data)...)
}

func TestParseRejects(t *testing.T) {
	huge := make([]byte, 16)
	binary.LittleEndian.PutUint64(huge, MaxHeaderSize+1)
	huge[8] = '{'
	cases := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrTruncated},
		{"header too large", huge, ErrHeaderTooLarge},
		{"header past end", file(`{}`, 0)[:9], ErrTruncated},
		{"not json", file(`nope`, 0), ErrBadHeader},
		{"a text file", []byte("model weights, see the notes below\n"), ErrBadHeader},
		{"array", file(`[]`, 0), ErrBadHeader},
		{"trailing", file(`{}{}`, 0), ErrBadHeader},
		{"bad dtype", file(`{"a":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}}`, 1), ErrBadDType},
		{"unknown field", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":1}}`, 1), ErrBadHeader},
		{"missing field", file(`{"a":{"dtype":"U8","shape":[1]}}`, 1), ErrBadHeader},
		{"negative dim", file(`{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}`, 1), ErrBadHeader},
		{"overflow", file(`{"a":{"dtype":"F64","shape":[4611686018427387904,4],"data_offsets":[0,1]}}`, 1), ErrBadHeader},
		{"size mismatch", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4), ErrSizeMismatch},
		{"past end", file(`{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}`, 3), ErrBadOffsets},
		{"reversed", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,0]}}`, 1), ErrBadOffsets},
		{"three offsets", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}`, 1), ErrBadOffsets},
		{"gap", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}`, 2), ErrBadOffsets},
		{"overlap", file(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}`, 3), ErrBadOffsets},
		{"trailing data", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 2), ErrBadOffsets},
		{"duplicate", file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 1), ErrDuplicate},
		{"metadata not strings", file(`{"__metadata__":{"a":1}}`, 0), ErrBadHeader},
		// encoding/json alone matches keys case-insensitively, keeps the
		// last of repeated keys and replaces invalid UTF-8.
		{"key in capitals", file(`{"t":{"DTYPE":"U8","Shape":[1],"Data_Offsets":[0,1]}}`, 1), ErrBadHeader},
		{"repeated key", file(`{"t":{"dtype":"F16","dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 1), ErrBadHeader},
		{"repeated metadata key", file(`{"__metadata__":{"a":"1","a":"2"}}`, 0), ErrBadHeader},
		{"invalid UTF-8 name", file("{\"a\xff\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1), ErrBadHeader},
		{"bool byte", file(`{"a":{"dtype":"BOOL","shape":[1],"data_offsets":[0,1]}}`, 1), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse(c.b)
			if c.want == nil {
				if err != nil {
					t.Fatalf("err = %v, want success", err)
				}
				return
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func TestEmptyTensorSharesOffset(t *testing.T) {
	// The empty tensor is listed after the one it shares a begin offset with.
	b := file(`{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"z":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`, 2)
	f, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.Tensors[0].Name != "z" || f.Tensors[1].Name != "a" {
		t.Errorf("order = %s, %s", f.Tensors[0].Name, f.Tensors[1].Name)
	}
}

func TestHalfToFloat32(t *testing.T) {
	// Hand-computed binary16 values.
	cases := map[uint16]float32{
		0x3c00: 1, 0xc000: -2, 0x7bff: 65504, 0x0400: 1.0 / 16384, 0x0001: 1.0 / 16777216,
		0x03ff: 1023.0 / 16777216, 0x3555: 0.333251953125, 0x7c00: float32(math.Inf(1)),
	}
	for h, want := range cases {
		if got := float16.ToFloat32(h); got != want {
			t.Errorf("half %#04x = %v, want %v", h, got, want)
		}
	}
	if got := float16.ToFloat32(0x7e00); !math.IsNaN(float64(got)) {
		t.Errorf("half NaN = %v", got)
	}
	if got := float16.ToFloat32(0x8000); math.Float32bits(got) != 0x80000000 {
		t.Errorf("half -0 = %#x", math.Float32bits(got))
	}
}

// FuzzRead checks that Parse never panics and that whatever it accepts
// re-encodes to a file that parses to the same tensors.
func FuzzRead(f *testing.F) {
	ref, err := os.ReadFile("testdata/python_reference.safetensors")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ref)
	f.Add(file(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}`, 1))
	f.Add(file(`{}`, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		parsed, err := Parse(b)
		if err != nil {
			return
		}
		again, err := Encode(parsed.Tensors, parsed.Metadata)
		if err != nil {
			t.Fatalf("accepted file does not re-encode: %v", err)
		}
		back, err := Parse(again)
		if err != nil {
			t.Fatalf("re-encoded file does not parse: %v", err)
		}
		if len(back.Tensors) != len(parsed.Tensors) || !reflect.DeepEqual(back.Metadata, parsed.Metadata) {
			t.Fatalf("round trip changed the file")
		}
		for i := range back.Tensors {
			p, q := parsed.Tensors[i], back.Tensors[i]
			if p.Name != q.Name || p.DType != q.DType || !bytes.Equal(p.Data, q.Data) || !reflect.DeepEqual(p.Shape, q.Shape) {
				t.Fatalf("tensor %d changed: %+v -> %+v", i, p, q)
			}
		}
	})
}
