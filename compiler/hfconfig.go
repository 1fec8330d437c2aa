package compiler

import (
	"path/filepath"
)

// hfConfig decodes the first Hugging Face config.json beside the model, or
// in the folder above it (where models/export writes it), that decodes into
// a T for which keep holds, and returns it with its path ("" when none).
func hfConfig[T any](src string, keep func(T) bool) (cfg T, path string) {
	dir := filepath.Dir(src)
	for _, d := range []string{dir, filepath.Dir(dir)} {
		var c T
		p := filepath.Join(d, "config.json")
		if readJSON(p, &c) && keep(c) {
			return c, p
		}
	}
	return cfg, ""
}

// tiedEmbeddings reports whether the model's config.json (hfConfig) says
// tie_word_embeddings: the lm_head's weight is the embedding matrix. An
// absent key is not tied (Qwen2Config's default); no config, not known.
// It returns the config's path when one was read.
func tiedEmbeddings(src string) (tied bool, from string) {
	type tie struct {
		Tied *bool `json:"tie_word_embeddings"`
	}
	hf, from := hfConfig(src, func(tie) bool { return true })
	return hf.Tied != nil && *hf.Tied, from
}
