package compiler

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/dartc/dartc/compiler/ir"
	"github.com/dartc/dartc/passes"
	"github.com/dartc/dartc/safetensors"
)

// WriteInitialAdapters writes the adapters a fresh run starts from: every A
// drawn as PEFT does (Kaiming-uniform with a = √5 on the [rank, in] weight,
// i.e. U(−1/√in, 1/√in)), every B zero, so that the compiled model starts
// equal to the base. Each tensor has its own stream derived from the seed and
// its name, so adding a target does not change the others.
func WriteInitialAdapters(path string, s *passes.State, seed uint64, base string) error {
	var tensors []safetensors.Tensor
	for _, in := range s.AdapterInputs {
		dims := make([]int64, len(in.Type.Dims))
		n := int64(1)
		for i, d := range in.Type.Dims {
			dims[i] = d.Value
			n *= d.Value
		}
		vals := make([]float64, n)
		if strings.Contains(in.Name, ".lora_A.") {
			h := fnv.New64a()
			h.Write([]byte(in.Name))
			rng := rand.New(rand.NewPCG(seed, h.Sum64()))
			bound := 1 / math.Sqrt(float64(dims[0]))
			for i := range vals {
				vals[i] = (2*rng.Float64() - 1) * bound
			}
		}
		switch in.Type.DType {
		case ir.Float64:
			tensors = append(tensors, safetensors.FromFloat64(in.Name, dims, vals))
		case ir.Float32:
			f := make([]float32, len(vals))
			for i, v := range vals {
				f[i] = float32(v)
			}
			tensors = append(tensors, safetensors.FromFloat32(in.Name, dims, f))
		default:
			return fmt.Errorf("compiler: adapter %s has unsupported type %s", in.Name, in.Type.DType)
		}
	}
	meta := map[string]string{
		"format":     "dartc-adapters",
		"rank":       strconv.Itoa(s.Opts.Rank),
		"alpha":      strconv.FormatFloat(s.Opts.Alpha, 'g', -1, 64),
		"roles":      strings.Join(s.Opts.Roles, ","),
		"base_model": base,
		"seed":       strconv.FormatUint(seed, 10),
	}
	return safetensors.Write(path, tensors, meta)
}
