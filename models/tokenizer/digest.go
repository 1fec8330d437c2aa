package tokenizer

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Files lists the tokenizer files Load reads that are present in dir, in
// a fixed order: tokenizer.json (or vocab.json and merges.txt), then
// tokenizer_config.json.
func Files(dir string) []string {
	var names []string
	switch {
	case fileExists(filepath.Join(dir, JSONFile)):
		names = append(names, JSONFile)
	case fileExists(filepath.Join(dir, VocabFile)) && fileExists(filepath.Join(dir, MergesFile)):
		names = append(names, VocabFile, MergesFile)
	}
	if len(names) > 0 && fileExists(filepath.Join(dir, ConfigFile)) {
		names = append(names, ConfigFile)
	}
	return names
}

// Digest identifies the tokenizer in dir: the SHA-256 over the name,
// length and bytes of each of Files(dir), in order. Two directories with
// the same files give the same digest wherever they lie.
func Digest(dir string) (string, error) {
	names := Files(dir)
	if len(names) == 0 {
		return "", fmt.Errorf("%w in %s: need %s, or %s and %s", ErrMissingFiles, dir, JSONFile, VocabFile, MergesFile)
	}
	h := sha256.New()
	for _, name := range names {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			return "", fmt.Errorf("tokenizer: digest: %w", err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return "", fmt.Errorf("tokenizer: digest: %w", err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", name, st.Size())
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return "", fmt.Errorf("tokenizer: digest %s: %w", name, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
