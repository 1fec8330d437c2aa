package ir

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/dartc/dartc/ir/onnxpb"
)

// DType is an ONNX tensor element type (TensorProto.DataType).
type DType int32

// The element types dartc handles.
const (
	Undefined DType = DType(onnxpb.TensorProto_UNDEFINED)
	Float32   DType = DType(onnxpb.TensorProto_FLOAT)
	Uint8     DType = DType(onnxpb.TensorProto_UINT8)
	Int8      DType = DType(onnxpb.TensorProto_INT8)
	Uint16    DType = DType(onnxpb.TensorProto_UINT16)
	Int16     DType = DType(onnxpb.TensorProto_INT16)
	Int32     DType = DType(onnxpb.TensorProto_INT32)
	Int64     DType = DType(onnxpb.TensorProto_INT64)
	String    DType = DType(onnxpb.TensorProto_STRING)
	Bool      DType = DType(onnxpb.TensorProto_BOOL)
	Float16   DType = DType(onnxpb.TensorProto_FLOAT16)
	Float64   DType = DType(onnxpb.TensorProto_DOUBLE)
	Uint32    DType = DType(onnxpb.TensorProto_UINT32)
	Uint64    DType = DType(onnxpb.TensorProto_UINT64)
	BFloat16  DType = DType(onnxpb.TensorProto_BFLOAT16)
)

var dtypeNames = map[DType]string{
	Undefined: "undefined", Float32: "float32", Uint8: "uint8", Int8: "int8", Uint16: "uint16",
	Int16: "int16", Int32: "int32", Int64: "int64", String: "string", Bool: "bool",
	Float16: "float16", Float64: "float64", Uint32: "uint32", Uint64: "uint64", BFloat16: "bfloat16",
}

// String returns the lower-case name of the type (float32, int64, …).
func (t DType) String() string {
	if n, ok := dtypeNames[t]; ok {
		return n
	}
	return "dtype(" + strconv.Itoa(int(t)) + ")"
}

// ParseDType is the inverse of DType.String.
func ParseDType(s string) (DType, error) {
	for t, n := range dtypeNames {
		if n == s {
			return t, nil
		}
	}
	return Undefined, fmt.Errorf("ir: unknown dtype %q", s)
}

// Size is the byte size of one element, or 0 for types without a fixed
// byte size (string, sub-byte types).
func (t DType) Size() int {
	switch t {
	case Uint8, Int8, Bool:
		return 1
	case Uint16, Int16, Float16, BFloat16:
		return 2
	case Int32, Uint32, Float32:
		return 4
	case Int64, Uint64, Float64:
		return 8
	}
	return 0
}

// IsFloat reports whether t is a floating-point type.
func (t DType) IsFloat() bool {
	return t == Float32 || t == Float64 || t == Float16 || t == BFloat16
}

// Dim is one dimension of a value's shape: a size, a symbol, or unknown
// (both empty, Value -1).
type Dim struct {
	Value int64 // ≥ 0 when known; -1 when not a number
	Param string
}

// Known reports whether the dimension is a number.
func (d Dim) Known() bool { return d.Value >= 0 && d.Param == "" }

func (d Dim) String() string {
	switch {
	case d.Param != "":
		return d.Param
	case d.Value >= 0:
		return strconv.FormatInt(d.Value, 10)
	}
	return "?"
}

// Dims builds known dimensions from sizes.
func Dims(sizes ...int64) []Dim {
	ds := make([]Dim, len(sizes))
	for i, s := range sizes {
		ds[i] = Dim{Value: s}
	}
	return ds
}

// Sym is a symbolic dimension.
func Sym(name string) Dim { return Dim{Value: -1, Param: name} }

// Type is a tensor type: element type and, when Shape is true, the dims.
type Type struct {
	DType DType
	Shape bool // whether Dims is meaningful (an unknown rank has Shape false)
	Dims  []Dim
}

// TensorType is a shorthand for a ranked tensor type.
func TensorType(dt DType, dims ...Dim) *Type {
	return &Type{DType: dt, Shape: true, Dims: dims}
}

func (t *Type) String() string {
	if t == nil {
		return "?"
	}
	if !t.Shape {
		return t.DType.String() + "[*]"
	}
	parts := make([]string, len(t.Dims))
	for i, d := range t.Dims {
		parts[i] = d.String()
	}
	return t.DType.String() + "[" + strings.Join(parts, ",") + "]"
}

// Clone returns a deep copy.
func (t *Type) Clone() *Type {
	if t == nil {
		return nil
	}
	c := *t
	c.Dims = append([]Dim(nil), t.Dims...)
	return &c
}

// ValueInfo names a typed value: a graph input, output or annotated
// intermediate.
type ValueInfo struct {
	Name string
	Type *Type
	Doc  string
}
