package agent

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/safetensors"
)

// LoadAdapters reads an adapters.safetensors file into tensors for the
// decoder's adapter inputs (its static inputs), checking that every input is
// present with the declared dtype and shape. Extra tensors are an error too:
// they mean the file belongs to another model.
func LoadAdapters(path string, inputs []runtime.IOInfo) (map[string]*runtime.Tensor, error) {
	f, err := safetensors.Read(path)
	if err != nil {
		return nil, fmt.Errorf("agent: adapters: %w", err)
	}
	if err := f.CheckFinite(); err != nil {
		return nil, fmt.Errorf("agent: adapters %s: %w: the adapters are corrupt (a diverged run? use an earlier checkpoint)", path, err)
	}
	byName := map[string]safetensors.Tensor{}
	for _, t := range f.Tensors {
		byName[t.Name] = t
	}
	out := map[string]*runtime.Tensor{}
	for _, in := range inputs {
		st, ok := byName[in.Name]
		if !ok {
			return nil, fmt.Errorf("agent: adapters %s: no tensor %q that the model needs: the file was written for another compiled model", path, in.Name)
		}
		delete(byName, in.Name)
		if !slices.Equal(st.Shape, in.Dims) {
			return nil, fmt.Errorf("agent: adapters %s: tensor %q has shape %v, the model wants %v", path, in.Name, st.Shape, in.Dims)
		}
		t, err := toTensor(st, in.DType)
		if err != nil {
			return nil, fmt.Errorf("agent: adapters %s: tensor %q: %w", path, in.Name, err)
		}
		out[in.Name] = t
	}
	if len(byName) > 0 {
		extra := make([]string, 0, len(byName))
		for n := range byName {
			extra = append(extra, n)
		}
		slices.Sort(extra)
		return nil, fmt.Errorf("agent: adapters %s: %d tensors the model has no input for (first %q): the file was written for another compiled model", path, len(extra), extra[0])
	}
	return out, nil
}

func toTensor(st safetensors.Tensor, want runtime.DType) (*runtime.Tensor, error) {
	switch {
	case want == runtime.Float32 && st.DType == safetensors.F32:
		v, err := st.Float32s()
		if err != nil {
			return nil, err
		}
		return runtime.FromFloat32(st.Shape, v)
	case want == runtime.Float64 && st.DType == safetensors.F64:
		v, err := st.Float64s()
		if err != nil {
			return nil, err
		}
		return runtime.FromFloat64(st.Shape, v)
	case want == runtime.Float16 && st.DType == safetensors.F16:
		bits := make([]uint16, len(st.Data)/2)
		for i := range bits {
			bits[i] = binary.LittleEndian.Uint16(st.Data[2*i:])
		}
		return runtime.FromFloat16Bits(st.Shape, bits)
	}
	return nil, fmt.Errorf("dtype %s, the model wants %v", st.DType, want)
}

// ZeroAdapters returns zero tensors for the adapter inputs: the compiled
// model is then the base model.
func ZeroAdapters(inputs []runtime.IOInfo) (map[string]*runtime.Tensor, error) {
	out := map[string]*runtime.Tensor{}
	for _, in := range inputs {
		for _, d := range in.Dims {
			if d < 0 {
				return nil, fmt.Errorf("agent: input %q has symbolic dims %v and is not an adapter: the model is not a `dartc compile` output", in.Name, in.Dims)
			}
		}
		out[in.Name] = runtime.NewTensor(in.DType, in.Dims...)
	}
	return out, nil
}
