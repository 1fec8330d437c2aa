package compiler

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dartc/dartc/ir"
)

// maxPositions finds how many positions the model can attend over, the
// context the runtime, the agent, the trainer and eval must keep within.
// Each source below is an upper bound; the smallest found wins:
//
//   - a rotary cache in the graph: an initializer named *cos_cache* shaped
//     [positions, d] (ONNX Runtime GenAI and optimum fused exports);
//   - a static KV cache input key_cache.N shaped [batch, positions, …]
//     (ONNX Runtime GenAI's static-cache decoders);
//   - genai_config.json beside the model: model.context_length;
//   - config.json beside the model or in the folder above it (the Hugging
//     Face config, as optimum and models/export write it):
//     max_position_embeddings.
//
// The TorchScript and dynamo exports of Qwen2 compute the rotary angles
// from position_ids, so their graphs bound nothing and the config is the
// only source. explicit (--max-positions), when set, replaces them all.
// It returns 0 and "" when nothing is found.
func maxPositions(src string, m *ir.Model, explicit int64) (int64, string) {
	if explicit > 0 {
		return explicit, "--max-positions"
	}
	var best int64
	var how string
	found := func(n int64, from string) {
		if n > 0 && (best == 0 || n < best) {
			best, how = n, from
		}
	}
	for _, t := range m.Graph.Initializers {
		if strings.Contains(strings.ToLower(t.Name), "cos_cache") && len(t.Dims) == 2 {
			found(t.Dims[0], fmt.Sprintf("rotary cache %s %v", t.Name, t.Dims))
		}
	}
	for _, in := range m.Graph.Inputs {
		if strings.HasPrefix(in.Name, "key_cache.") && in.Type != nil && len(in.Type.Dims) >= 2 && in.Type.Dims[1].Known() {
			found(in.Type.Dims[1].Value, fmt.Sprintf("static KV cache input %s", in.Name))
		}
	}
	dir := filepath.Dir(src)
	var genai struct {
		Model struct {
			ContextLength int64 `json:"context_length"`
		} `json:"model"`
	}
	if readJSON(filepath.Join(dir, "genai_config.json"), &genai) {
		found(genai.Model.ContextLength, "genai_config.json context_length")
	}
	type positions struct {
		MaxPositions int64 `json:"max_position_embeddings"`
	}
	if hf, p := hfConfig(src, func(c positions) bool { return c.MaxPositions > 0 }); p != "" {
		found(hf.MaxPositions, p+" max_position_embeddings")
	}
	return best, how
}

// readJSON decodes the JSON file at path into v; false when it is missing
// or not JSON of that shape.
func readJSON(path string, v any) bool {
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	b = trimBOM(b)
	return json.Unmarshal(b, v) == nil
}

// trimBOM drops a leading UTF-8 byte order mark.
func trimBOM(b []byte) []byte {
	if len(b) >= 3 && b[0] == 0xef && b[1] == 0xbb && b[2] == 0xbf {
		return b[3:]
	}
	return b
}
