package compiler

import (
	"path/filepath"
)

// tiedEmbeddings reports whether the Hugging Face config.json beside the
// model, or in the folder above it (where models/export writes it), says
// tie_word_embeddings: the lm_head's weight is the embedding matrix. An
// absent key is not tied (Qwen2Config's default); no config, not known.
// It returns the config's path when one was read.
func tiedEmbeddings(src string) (tied bool, from string) {
	dir := filepath.Dir(src)
	for _, d := range []string{dir, filepath.Dir(dir)} {
		var hf struct {
			Tied *bool `json:"tie_word_embeddings"`
		}
		p := filepath.Join(d, "config.json")
		if readJSON(p, &hf) {
			return hf.Tied != nil && *hf.Tied, p
		}
	}
	return false, ""
}
