package grpo

import (
	"fmt"
	"math"

	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/safetensors"
)

// floatTensor returns a float32 or float64 tensor holding v.
func floatTensor(dt runtime.DType, shape []int64, v []float64) *runtime.Tensor {
	t := runtime.NewTensor(dt, shape...)
	switch dt {
	case runtime.Float64:
		copy(t.Float64(), v)
	case runtime.Float32:
		f := t.Float32()
		for i, x := range v {
			f[i] = float32(x)
		}
	default:
		panic(fmt.Sprintf("grpo: float tensor of %v", dt))
	}
	return t
}

// scalar returns a rank-0 tensor.
func scalar(dt runtime.DType, v float64) *runtime.Tensor {
	return floatTensor(dt, nil, []float64{v})
}

// cloneTensor copies t.
func cloneTensor(t *runtime.Tensor) *runtime.Tensor {
	c := runtime.NewTensor(t.DType(), t.Shape()...)
	copy(c.Bytes(), t.Bytes())
	return c
}

// allFinite reports whether every value of t is finite.
func allFinite(t *runtime.Tensor) bool {
	switch t.DType() {
	case runtime.Float32:
		for _, v := range t.Float32() {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return false
			}
		}
	case runtime.Float64:
		for _, v := range t.Float64() {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return false
			}
		}
	}
	return true
}

// addInto accumulates src into dst (same dtype and size).
func addInto(dst, src *runtime.Tensor) {
	switch dst.DType() {
	case runtime.Float32:
		d, s := dst.Float32(), src.Float32()
		for i := range d {
			d[i] += s[i]
		}
	case runtime.Float64:
		d, s := dst.Float64(), src.Float64()
		for i := range d {
			d[i] += s[i]
		}
	}
}

// toSafetensors converts a runtime tensor for writing.
func toSafetensors(name string, t *runtime.Tensor) (safetensors.Tensor, error) {
	switch t.DType() {
	case runtime.Float32:
		return safetensors.FromFloat32(name, t.Shape(), t.Float32()), nil
	case runtime.Float64:
		return safetensors.FromFloat64(name, t.Shape(), t.Float64()), nil
	}
	return safetensors.Tensor{}, fmt.Errorf("grpo: tensor %s has dtype %v; adapters are float32 or float64", name, t.DType())
}

// fromSafetensors converts a read tensor to the wanted dtype's runtime tensor.
func fromSafetensors(st safetensors.Tensor, dt runtime.DType) (*runtime.Tensor, error) {
	switch dt {
	case runtime.Float32:
		v, err := st.Float32s()
		if err != nil {
			return nil, err
		}
		return runtime.FromFloat32(st.Shape, v)
	case runtime.Float64:
		v, err := st.Float64s()
		if err != nil {
			return nil, err
		}
		return runtime.FromFloat64(st.Shape, v)
	}
	return nil, fmt.Errorf("grpo: adapter dtype %v; want float32 or float64", dt)
}
