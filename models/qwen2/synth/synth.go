package synth

import (
	"fmt"
	"path/filepath"

	"github.com/dartc/dartc/models/qwen2"
)

// Result describes a synthesized model.
type Result struct {
	Dir       string
	ModelPath string
	// DataPath is the external data file, empty when every tensor is inline.
	DataPath string
	// DataSize is the data file's apparent size in bytes.
	DataSize int64
	// Weights maps Hugging Face parameter names (linear weights [out, in],
	// row-major) to the values stored in the graph, already rounded to the
	// dtype; a tied model's lm_head.weight is the embedding slice itself.
	// Nil when the weights are zeros.
	Weights map[string][]float64
	// Nodes and Initializers count the graph's nodes and initializers.
	Nodes, Initializers int
}

// Synthesize writes dir/model.onnx (and dir/model.onnx.data when weights are
// external) and dir/config.json (the Hugging Face config of cfg): a Qwen2 decoder with cfg's shapes in the op pattern of the
// exporter chosen by opts.LinearForm. dir must not exist unless opts.Force;
// it is written through a temporary sibling and renamed into place.
func Synthesize(cfg qwen2.Config, dir string, opts Options) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("synth: %w", err)
	}
	if cfg.Name == "" {
		cfg.Name = "custom"
	}
	random := opts.Random(cfg)
	model, tensors := build(cfg, opts)
	elemSize := opts.DType.Size()
	var total int64
	for _, t := range tensors {
		total += int64(t.numel) * int64(elemSize)
	}
	external := opts.Storage == StorageExternal || (opts.Storage == StorageAuto && total > InlineLimit)
	if !external && total > 1<<31-(64<<20) {
		return nil, fmt.Errorf("synth: %d bytes of weights do not fit in one protobuf (2 GiB limit); use external storage", total)
	}
	dataSize := layout(tensors, elemSize, external)

	res := &Result{Dir: filepath.Clean(dir), Nodes: len(model.Graph.Node), Initializers: len(model.Graph.Initializer), DataSize: dataSize}
	if random {
		res.Weights = drawWeights(cfg, opts.Seed, opts.DType)
	}
	err := atomicDir(dir, opts.Force, func(tmp string) error {
		if err := writeConfig(tmp, cfg, opts.DType); err != nil {
			return err
		}
		return writeFiles(tmp, model, tensors, res.Weights, opts.DType, dataSize)
	})
	if err != nil {
		return nil, err
	}
	res.ModelPath = filepath.Join(res.Dir, ModelFile)
	if dataSize > 0 {
		res.DataPath = filepath.Join(res.Dir, DataFile)
	}
	return res, nil
}
