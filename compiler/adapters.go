package compiler

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/passes"
	"github.com/dartc/dartc/safetensors"
)

// WriteInitialAdapters writes the adapters a fresh run starts from: every A
// drawn as PEFT does (Kaiming-uniform with a = √5 on the [rank, in] weight,
// i.e. U(−1/√in, 1/√in)), every B zero, so that the compiled model starts
// equal to the base. Each tensor has its own stream derived from the seed and
// its name, so adding a target does not change the others.
func WriteInitialAdapters(path string, s *passes.State, seed uint64, base string) error {
	specs := make([]safetensors.Tensor, len(s.AdapterInputs))
	for i, in := range s.AdapterInputs {
		dims := make([]int64, len(in.Type.Dims))
		for k, d := range in.Type.Dims {
			dims[k] = d.Value
		}
		dt := safetensors.F32
		switch in.Type.DType {
		case ir.Float64:
			dt = safetensors.F64
		case ir.Float32:
		default:
			return fmt.Errorf("compiler: adapter %s has unsupported type %s", in.Name, in.Type.DType)
		}
		specs[i] = safetensors.Tensor{Name: in.Name, DType: dt, Shape: dims}
	}
	// Tensors are drawn one at a time into the writer's buffer: memory
	// stays at one tensor whatever the model's size.
	fill := func(i int, dst []byte) error {
		name := specs[i].Name
		if !strings.Contains(name, ".lora_A.") {
			return nil // B starts at zero
		}
		h := fnv.New64a()
		h.Write([]byte(name))
		rng := rand.New(rand.NewPCG(seed, h.Sum64()))
		bound := 1 / math.Sqrt(float64(specs[i].Shape[0]))
		if specs[i].DType == safetensors.F64 {
			for k := 0; k < len(dst); k += 8 {
				binary.LittleEndian.PutUint64(dst[k:], math.Float64bits((2*rng.Float64()-1)*bound))
			}
			return nil
		}
		for k := 0; k < len(dst); k += 4 {
			binary.LittleEndian.PutUint32(dst[k:], math.Float32bits(float32((2*rng.Float64()-1)*bound)))
		}
		return nil
	}
	meta := map[string]string{
		"format":     "dartc-adapters",
		"rank":       strconv.Itoa(s.Opts.Rank),
		"alpha":      strconv.FormatFloat(s.Opts.Alpha, 'g', -1, 64),
		"roles":      strings.Join(s.Opts.Roles, ","),
		"base_model": base,
		"seed":       strconv.FormatUint(seed, 10),
	}
	return safetensors.WriteStream(path, specs, meta, fill)
}
