package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/dartc/dartc/internal/float16"
)

// FromFloat32 returns an F32 tensor holding values with the given shape.
// It panics if the shape does not match len(values): that is a caller bug.
func FromFloat32(name string, shape []int64, values []float32) Tensor {
	mustMatch(name, shape, len(values))
	b := make([]byte, 4*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return Tensor{Name: name, DType: F32, Shape: cloneShape(shape), Data: b}
}

// FromFloat64 returns an F64 tensor holding values with the given shape.
// It panics if the shape does not match len(values).
func FromFloat64(name string, shape []int64, values []float64) Tensor {
	mustMatch(name, shape, len(values))
	b := make([]byte, 8*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint64(b[8*i:], math.Float64bits(v))
	}
	return Tensor{Name: name, DType: F64, Shape: cloneShape(shape), Data: b}
}

// FromInt64 returns an I64 tensor holding values with the given shape.
// It panics if the shape does not match len(values).
func FromInt64(name string, shape []int64, values []int64) Tensor {
	mustMatch(name, shape, len(values))
	b := make([]byte, 8*len(values))
	for i, v := range values {
		binary.LittleEndian.PutUint64(b[8*i:], uint64(v))
	}
	return Tensor{Name: name, DType: I64, Shape: cloneShape(shape), Data: b}
}

func mustMatch(name string, shape []int64, n int) {
	if numElements(shape) != int64(n) {
		panic(fmt.Sprintf("safetensors: tensor %q: shape %v holds %d elements, got %d values", name, shape, numElements(shape), n))
	}
}

func cloneShape(shape []int64) []int64 { return append([]int64{}, shape...) }

func (t Tensor) checkData() error {
	if err := checkTensor(t); err != nil {
		return err
	}
	return nil
}

// Float32s decodes the tensor as float32 values. F32 is copied; F16 and BF16
// are widened exactly. Other types are an error.
func (t Tensor) Float32s() ([]float32, error) {
	if err := t.checkData(); err != nil {
		return nil, err
	}
	n := len(t.Data) / int(t.DType.Size())
	out := make([]float32, n)
	switch t.DType {
	case F32:
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
		}
	case F16:
		for i := range out {
			out[i] = float16.ToFloat32(binary.LittleEndian.Uint16(t.Data[2*i:]))
		}
	case BF16:
		for i := range out {
			out[i] = math.Float32frombits(uint32(binary.LittleEndian.Uint16(t.Data[2*i:])) << 16)
		}
	default:
		return nil, fmt.Errorf("safetensors: tensor %q is %s, not a float32-compatible type (F32, F16, BF16)", t.Name, t.DType)
	}
	return out, nil
}

// Float64s decodes the tensor as float64 values. F64 is copied; F32, F16
// and BF16 are widened exactly. Other types are an error.
func (t Tensor) Float64s() ([]float64, error) {
	if t.DType == F64 {
		if err := t.checkData(); err != nil {
			return nil, err
		}
		out := make([]float64, len(t.Data)/8)
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:]))
		}
		return out, nil
	}
	f, err := t.Float32s()
	if err != nil {
		return nil, fmt.Errorf("safetensors: tensor %q is %s, not a float type", t.Name, t.DType)
	}
	out := make([]float64, len(f))
	for i, v := range f {
		out[i] = float64(v)
	}
	return out, nil
}

// Int64s decodes the tensor as int64 values. Signed and unsigned integer
// types up to 32 bits and I64 are accepted; U64 is accepted when every value
// fits; BOOL gives 0 or 1. Float types are an error.
func (t Tensor) Int64s() ([]int64, error) {
	if err := t.checkData(); err != nil {
		return nil, err
	}
	size := int(t.DType.Size())
	out := make([]int64, len(t.Data)/size)
	le := binary.LittleEndian
	for i := range out {
		p := t.Data[size*i:]
		switch t.DType {
		case I64:
			out[i] = int64(le.Uint64(p))
		case I32:
			out[i] = int64(int32(le.Uint32(p)))
		case I16:
			out[i] = int64(int16(le.Uint16(p)))
		case I8:
			out[i] = int64(int8(p[0]))
		case U64:
			v := le.Uint64(p)
			if v > math.MaxInt64 {
				return nil, fmt.Errorf("safetensors: tensor %q element %d = %d does not fit in int64", t.Name, i, v)
			}
			out[i] = int64(v)
		case U32:
			out[i] = int64(le.Uint32(p))
		case U16:
			out[i] = int64(le.Uint16(p))
		case U8:
			out[i] = int64(p[0])
		case BOOL:
			if p[0] > 1 {
				return nil, fmt.Errorf("safetensors: tensor %q element %d: BOOL byte %d is not 0 or 1", t.Name, i, p[0])
			}
			out[i] = int64(p[0])
		default:
			return nil, fmt.Errorf("safetensors: tensor %q is %s, not an integer type", t.Name, t.DType)
		}
	}
	return out, nil
}

// ErrNonFinite reports a floating-point tensor holding a NaN or an
// infinity.
var ErrNonFinite = errors.New("safetensors: non-finite value")

// CheckFinite returns an ErrNonFinite error naming the first tensor of f
// with a NaN or infinite element (floating-point tensors only), and where.
func (f *File) CheckFinite() error {
	for _, t := range f.Tensors {
		var bad func(i int) (float64, bool)
		switch t.DType {
		case F64:
			bad = func(i int) (float64, bool) {
				v := math.Float64frombits(binary.LittleEndian.Uint64(t.Data[8*i:]))
				return v, math.IsNaN(v) || math.IsInf(v, 0)
			}
		case F32:
			bad = func(i int) (float64, bool) {
				v := float64(math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:])))
				return v, math.IsNaN(v) || math.IsInf(v, 0)
			}
		case F16, BF16:
			exp := uint16(0x7c00) // float16: 5 exponent bits
			if t.DType == BF16 {
				exp = 0x7f80 // bfloat16: 8
			}
			bad = func(i int) (float64, bool) {
				b := binary.LittleEndian.Uint16(t.Data[2*i:])
				if b&exp != exp {
					return 0, false
				}
				if b&^(exp|0x8000) != 0 {
					return math.NaN(), true
				}
				return math.Inf(1), true
			}
		default:
			continue
		}
		n := len(t.Data) / int(t.DType.Size())
		for i := 0; i < n; i++ {
			if v, ok := bad(i); ok {
				return fmt.Errorf("%w: tensor %q element %d of %d is %v", ErrNonFinite, t.Name, i, n, v)
			}
		}
	}
	return nil
}
