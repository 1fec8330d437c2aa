package tokenizer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// DefaultRelDir is where the project keeps the Qwen2 tokenizer files.
const DefaultRelDir = "data/qwen2-tokenizer"

// ErrNoDefaultDir is returned by DefaultDir when no directory is found.
var ErrNoDefaultDir = errors.New("tokenizer: default tokenizer directory not found")

// DefaultDir finds data/qwen2-tokenizer in the working directory or one of
// its parents, else next to the running binary or one of its parents.
func DefaultDir() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for d := dir; ; d = filepath.Dir(d) {
			p := filepath.Join(d, DefaultRelDir)
			if fileExists(filepath.Join(p, VocabFile)) || fileExists(filepath.Join(p, JSONFile)) {
				return p, nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", fmt.Errorf("%w: looked for %s upwards from the working directory and the binary; pass --tokenizer DIR", ErrNoDefaultDir, DefaultRelDir)
}
