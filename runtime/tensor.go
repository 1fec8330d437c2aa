package runtime

import (
	"fmt"
	"unsafe"

	"github.com/dartc/dartc/internal/float16"
)

// Tensor is a dense host-memory tensor in C (row-major) order.
//
// Its storage is 8-byte aligned Go memory, viewed through the typed accessors
// (Float32, Int64, ...). An accessor for the wrong dtype panics: that is a
// programming error, not bad input.
type Tensor struct {
	dtype DType
	shape []int64
	words []uint64 // backing store; keeps the byte view aligned for any dtype
	bytes []byte   // the tensor's bytes, a view of words
	count int
}

// NewTensor returns a zero-filled tensor of the given type and shape.
func NewTensor(dtype DType, shape ...int64) *Tensor {
	n := 1
	for _, d := range shape {
		if d < 0 {
			panic(fmt.Sprintf("runtime: negative dim in shape %v", shape))
		}
		n *= int(d)
	}
	nbytes := n * dtype.Size()
	t := &Tensor{dtype: dtype, shape: append([]int64(nil), shape...), count: n}
	t.words = make([]uint64, (nbytes+7)/8)
	if nbytes > 0 {
		t.bytes = unsafe.Slice((*byte)(unsafe.Pointer(&t.words[0])), nbytes)
	} else {
		t.bytes = []byte{}
	}
	return t
}

func checkLen(shape []int64, n int) error {
	want := 1
	for _, d := range shape {
		if d < 0 {
			return fmt.Errorf("runtime: negative dim in shape %v", shape)
		}
		want *= int(d)
	}
	if want != n {
		return fmt.Errorf("runtime: shape %v holds %d elements, got %d values", shape, want, n)
	}
	return nil
}

// FromFloat32 returns a float32 tensor holding a copy of data.
func FromFloat32(shape []int64, data []float32) (*Tensor, error) {
	if err := checkLen(shape, len(data)); err != nil {
		return nil, err
	}
	t := NewTensor(Float32, shape...)
	copy(t.Float32(), data)
	return t, nil
}

// FromFloat64 returns a float64 tensor holding a copy of data.
func FromFloat64(shape []int64, data []float64) (*Tensor, error) {
	if err := checkLen(shape, len(data)); err != nil {
		return nil, err
	}
	t := NewTensor(Float64, shape...)
	copy(t.Float64(), data)
	return t, nil
}

// FromFloat16Bits returns a float16 tensor holding a copy of the half bits.
func FromFloat16Bits(shape []int64, data []uint16) (*Tensor, error) {
	if err := checkLen(shape, len(data)); err != nil {
		return nil, err
	}
	t := NewTensor(Float16, shape...)
	copy(t.Uint16(), data)
	return t, nil
}

// FromInt64 returns an int64 tensor holding a copy of data.
func FromInt64(shape []int64, data []int64) (*Tensor, error) {
	if err := checkLen(shape, len(data)); err != nil {
		return nil, err
	}
	t := NewTensor(Int64, shape...)
	copy(t.Int64(), data)
	return t, nil
}

// FromBool returns a bool tensor holding a copy of data.
func FromBool(shape []int64, data []bool) (*Tensor, error) {
	if err := checkLen(shape, len(data)); err != nil {
		return nil, err
	}
	t := NewTensor(Bool, shape...)
	copy(t.Bool(), data)
	return t, nil
}

// DType returns the element type.
func (t *Tensor) DType() DType { return t.dtype }

// Shape returns a copy of the dims.
func (t *Tensor) Shape() []int64 { return append([]int64(nil), t.shape...) }

// Len returns the number of elements.
func (t *Tensor) Len() int { return t.count }

// Bytes returns the raw little-endian bytes, shared with t.
func (t *Tensor) Bytes() []byte { return t.bytes }

func (t *Tensor) must(d DType) {
	if t.dtype != d {
		panic(fmt.Sprintf("runtime: %v accessor on a %v tensor", d, t.dtype))
	}
}

func view[T any](t *Tensor) []T {
	if t.count == 0 {
		return []T{}
	}
	return unsafe.Slice((*T)(unsafe.Pointer(&t.words[0])), t.count)
}

// Float32 returns the elements of a float32 tensor, shared with t.
func (t *Tensor) Float32() []float32 { t.must(Float32); return view[float32](t) }

// Float64 returns the elements of a float64 tensor, shared with t.
func (t *Tensor) Float64() []float64 { t.must(Float64); return view[float64](t) }

// Int64 returns the elements of an int64 tensor, shared with t.
func (t *Tensor) Int64() []int64 { t.must(Int64); return view[int64](t) }

// Int32 returns the elements of an int32 tensor, shared with t.
func (t *Tensor) Int32() []int32 { t.must(Int32); return view[int32](t) }

// Bool returns the elements of a bool tensor, shared with t.
func (t *Tensor) Bool() []bool { t.must(Bool); return view[bool](t) }

// Uint16 returns the bits of a float16 or bfloat16 tensor, shared with t.
func (t *Tensor) Uint16() []uint16 {
	if t.dtype != Float16 && t.dtype != BFloat16 {
		panic(fmt.Sprintf("runtime: uint16 bits accessor on a %v tensor", t.dtype))
	}
	return view[uint16](t)
}

// FloatsAt converts elements [off, off+n) of a floating-point or integer
// tensor to float64 into dst (grown as needed) and returns it.
func (t *Tensor) FloatsAt(dst []float64, off, n int) []float64 {
	if off < 0 || off+n > t.count {
		panic(fmt.Sprintf("runtime: elements [%d,%d) out of range of %d", off, off+n, t.count))
	}
	if cap(dst) < n {
		dst = make([]float64, n)
	}
	dst = dst[:n]
	switch t.dtype {
	case Float32:
		for i, v := range t.Float32()[off : off+n] {
			dst[i] = float64(v)
		}
	case Float64:
		copy(dst, t.Float64()[off:off+n])
	case Float16:
		for i, v := range t.Uint16()[off : off+n] {
			dst[i] = float64(float16.ToFloat32(v))
		}
	case BFloat16:
		for i, v := range t.Uint16()[off : off+n] {
			dst[i] = float64(BFloat16ToFloat32(v))
		}
	case Int64:
		for i, v := range t.Int64()[off : off+n] {
			dst[i] = float64(v)
		}
	case Int32:
		for i, v := range t.Int32()[off : off+n] {
			dst[i] = float64(v)
		}
	default:
		panic(fmt.Sprintf("runtime: FloatsAt on a %v tensor", t.dtype))
	}
	return dst
}

// Float32sAt converts elements [off, off+n) of a floating-point tensor to
// float32 into dst (grown as needed) and returns it.
func (t *Tensor) Float32sAt(dst []float32, off, n int) []float32 {
	if off < 0 || off+n > t.count {
		panic(fmt.Sprintf("runtime: elements [%d,%d) out of range of %d", off, off+n, t.count))
	}
	if cap(dst) < n {
		dst = make([]float32, n)
	}
	dst = dst[:n]
	switch t.dtype {
	case Float32:
		copy(dst, t.Float32()[off:off+n])
	case Float64:
		for i, v := range t.Float64()[off : off+n] {
			dst[i] = float32(v)
		}
	case Float16:
		for i, v := range t.Uint16()[off : off+n] {
			dst[i] = float16.ToFloat32(v)
		}
	case BFloat16:
		for i, v := range t.Uint16()[off : off+n] {
			dst[i] = BFloat16ToFloat32(v)
		}
	default:
		panic(fmt.Sprintf("runtime: Float32sAt on a %v tensor", t.dtype))
	}
	return dst
}

// Floats returns every element of a floating-point tensor as float64.
func (t *Tensor) Floats() []float64 { return t.FloatsAt(nil, 0, t.count) }

// String summarises the tensor: dtype and shape.
func (t *Tensor) String() string { return fmt.Sprintf("%v%v", t.dtype, t.shape) }
