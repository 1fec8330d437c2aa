package synth_test

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
)

func ExampleSynthesize() {
	dir, err := os.MkdirTemp("", "synth-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	cfg, _ := qwen2.Preset("tiny")
	res, err := synth.Synthesize(cfg, filepath.Join(dir, "tiny"), synth.Options{KVCache: true, Seed: 1})
	if err != nil {
		panic(err)
	}
	fmt.Println(filepath.Base(res.ModelPath), res.DataPath == "")
	fmt.Println(len(res.Weights["model.layers.0.self_attn.k_proj.weight"])) // [32, 64]
	// Output:
	// model.onnx true
	// 2048
}
