package runtime

import (
	"fmt"
	"math"

	ort "github.com/yalue/onnxruntime_go"
)

// DType is a tensor element type.
type DType int

// The element types a Tensor can hold.
const (
	Float32 DType = iota + 1
	Float64
	Float16 // IEEE half precision, stored as its uint16 bits
	BFloat16
	Int64
	Int32
	Bool
)

var dtypeNames = map[DType]string{
	Float32: "float32", Float64: "float64", Float16: "float16", BFloat16: "bfloat16",
	Int64: "int64", Int32: "int32", Bool: "bool",
}

// String returns the manifest's name of the type ("float32").
func (d DType) String() string {
	if s, ok := dtypeNames[d]; ok {
		return s
	}
	return fmt.Sprintf("dtype(%d)", int(d))
}

// Size returns the size of one element in bytes.
func (d DType) Size() int {
	switch d {
	case Float64, Int64:
		return 8
	case Float32, Int32:
		return 4
	case Float16, BFloat16:
		return 2
	case Bool:
		return 1
	}
	panic(fmt.Sprintf("runtime: size of unknown %v", d))
}

// ParseDType reads a manifest dtype name ("float32", "int64", ...).
func ParseDType(s string) (DType, error) {
	for d, name := range dtypeNames {
		if name == s {
			return d, nil
		}
	}
	return 0, fmt.Errorf("runtime: unknown dtype %q (want float32, float64, float16, bfloat16, int64, int32 or bool)", s)
}

func (d DType) ort() ort.TensorElementDataType {
	switch d {
	case Float32:
		return ort.TensorElementDataTypeFloat
	case Float64:
		return ort.TensorElementDataTypeDouble
	case Float16:
		return ort.TensorElementDataTypeFloat16
	case BFloat16:
		return ort.TensorElementDataTypeBFloat16
	case Int64:
		return ort.TensorElementDataTypeInt64
	case Int32:
		return ort.TensorElementDataTypeInt32
	case Bool:
		return ort.TensorElementDataTypeBool
	}
	panic(fmt.Sprintf("runtime: no ONNX Runtime type for %v", d))
}

func dtypeFromORT(t ort.TensorElementDataType) (DType, bool) {
	switch t {
	case ort.TensorElementDataTypeFloat:
		return Float32, true
	case ort.TensorElementDataTypeDouble:
		return Float64, true
	case ort.TensorElementDataTypeFloat16:
		return Float16, true
	case ort.TensorElementDataTypeBFloat16:
		return BFloat16, true
	case ort.TensorElementDataTypeInt64:
		return Int64, true
	case ort.TensorElementDataTypeInt32:
		return Int32, true
	case ort.TensorElementDataTypeBool:
		return Bool, true
	}
	return 0, false
}

// BFloat16ToFloat32 converts bfloat16 bits to a float32 (exact).
func BFloat16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }
