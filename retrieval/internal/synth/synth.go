package synth

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// Sources are the titles and sentences passages are drawn from.
type Sources struct {
	Titles    []string
	Sentences []string
}

// Load reads the sources from the shared data folder (…/shared/data).
func Load(sharedData string) (Sources, error) {
	var s Sources
	add := func(title, text string) {
		s.Titles = append(s.Titles, title)
		for _, sent := range strings.SplitAfter(text, ". ") {
			if sent = strings.TrimSpace(sent); len(sent) > 20 {
				s.Sentences = append(s.Sentences, sent)
			}
		}
	}
	err := eachLine(filepath.Join(sharedData, "corpus", "hotpotqa-distractor-500", "corpus.jsonl"), func(line []byte) error {
		var r struct{ Title, Text string }
		if err := json.Unmarshal(line, &r); err != nil {
			return err
		}
		add(r.Title, r.Text)
		return nil
	})
	if err != nil {
		return s, err
	}
	err = eachLine(filepath.Join(sharedData, "corpus", "flashrag-wiki-sample", "sample_data.jsonl"), func(line []byte) error {
		var r struct{ Contents string }
		if err := json.Unmarshal(line, &r); err != nil {
			return err
		}
		title, text, _ := strings.Cut(r.Contents, "\n")
		add(strings.Trim(title, "\""), text)
		return nil
	})
	return s, err
}

func eachLine(path string, fn func([]byte) error) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for n := 1; sc.Scan(); n++ {
		if err := fn(sc.Bytes()); err != nil {
			return fmt.Errorf("synth: %s line %d: %w", path, n, err)
		}
	}
	return sc.Err()
}

// Write writes n passages in FlashRAG JSONL form ({"id","contents"}).
func (s Sources) Write(w io.Writer, n int, seed uint64) error {
	if len(s.Titles) == 0 || len(s.Sentences) == 0 {
		return fmt.Errorf("synth: no sources")
	}
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	bw := bufio.NewWriterSize(w, 1<<20)
	enc := json.NewEncoder(bw)
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.Reset()
		b.WriteString("\"" + s.Titles[rng.IntN(len(s.Titles))] + "\"\n")
		k := 3 + rng.IntN(4)
		for j := 0; j < k; j++ {
			if j > 0 {
				b.WriteByte(' ')
			}
			b.WriteString(s.Sentences[rng.IntN(len(s.Sentences))])
		}
		row := struct {
			ID       string `json:"id"`
			Contents string `json:"contents"`
		}{fmt.Sprint(i), b.String()}
		if err := enc.Encode(row); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// SharedDataDir finds the team's shared fixture folder: shared/data beside
// the repository root (the directory holding go.mod above the working
// directory).
func SharedDataDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("synth: no go.mod above %s", dir)
		}
		dir = parent
	}
	data := filepath.Join(dir, "..", "shared", "data")
	if _, err := os.Stat(data); err != nil {
		return "", fmt.Errorf("synth: shared fixtures not found at %s (they sit beside the repository as shared/data): %w", data, err)
	}
	return data, nil
}
