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

// The repository's fixture files, relative to its root (PROVENANCE.md beside
// each records where they come from).
const (
	// HotpotCorpus is the 4,968 HotpotQA paragraphs, {"title","text"} rows.
	HotpotCorpus = "data/demo/corpus.jsonl"
	// HotpotQuestions is the 500 questions those paragraphs answer with the
	// titles of their two gold paragraphs, {"id","question","gold"} rows.
	HotpotQuestions = "retrieval/testdata/hotpotqa_gold.jsonl"
	// FlashRAGSample is FlashRAG's 1,000-passage wiki sample,
	// {"id","contents"} rows.
	FlashRAGSample = "retrieval/testdata/flashrag_sample.jsonl"
)

// Load reads the sources from the repository whose root is root: the
// HotpotQA paragraphs and the FlashRAG wiki sample.
func Load(root string) (Sources, error) {
	var s Sources
	add := func(title, text string) {
		s.Titles = append(s.Titles, title)
		for _, sent := range strings.SplitAfter(text, ". ") {
			if sent = strings.TrimSpace(sent); len(sent) > 20 {
				s.Sentences = append(s.Sentences, sent)
			}
		}
	}
	err := eachLine(filepath.Join(root, HotpotCorpus), func(line []byte) error {
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
	err = eachLine(filepath.Join(root, FlashRAGSample), func(line []byte) error {
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

// Root finds the repository root: the nearest directory holding go.mod at
// or above the working directory (go test runs in the package directory).
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("synth: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("synth: no go.mod at or above the working directory")
		}
		dir = parent
	}
}
