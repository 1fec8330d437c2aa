package compiler

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/models/prompt"
	"github.com/dartc/dartc/models/tokenizer"
)

// copyTokenizer checks that the tokenizer in src fits a model of vocab
// ids and can write the Search-R1 prompt, then copies its files into
// out/tokenizer and describes them for the manifest.
func copyTokenizer(src, out string, vocab int64) (*manifest.Tokenizer, error) {
	tok, err := tokenizer.Load(src)
	if err != nil {
		return nil, fmt.Errorf("compiler: tokenizer: %w", err)
	}
	if vocab > 0 && int64(tok.VocabSize()) > vocab {
		return nil, fmt.Errorf("compiler: tokenizer %s has %d ids but the model's vocabulary has %d: they do not belong together (pass the model's own tokenizer with --tokenizer)", src, tok.VocabSize(), vocab)
	}
	for _, name := range []string{prompt.IMStart, prompt.IMEnd} {
		if _, err := tok.SpecialID(name); err != nil {
			return nil, fmt.Errorf("compiler: tokenizer %s cannot write the ChatML prompt: %w", src, err)
		}
	}
	if len(tok.EOSIDs()) == 0 {
		return nil, fmt.Errorf("compiler: tokenizer %s names no EOS token (eos_token in tokenizer_config.json, or an added <|endoftext|>)", src)
	}
	sum, err := tokenizer.Digest(src)
	if err != nil {
		return nil, fmt.Errorf("compiler: %w", err)
	}
	abs, err := filepath.Abs(src)
	if err != nil {
		return nil, fmt.Errorf("compiler: %w", err)
	}
	dst := filepath.Join(out, manifest.TokenizerDir)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return nil, fmt.Errorf("compiler: %w", err)
	}
	files := tokenizer.Files(src)
	for _, name := range files {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return nil, fmt.Errorf("compiler: tokenizer: %w", err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o644); err != nil {
			return nil, fmt.Errorf("compiler: tokenizer: %w", err)
		}
	}
	return &manifest.Tokenizer{Dir: manifest.TokenizerDir, Files: files, SHA256: sum, Vocab: tok.VocabSize(), Source: abs}, nil
}
