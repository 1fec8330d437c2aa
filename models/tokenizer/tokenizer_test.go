package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/text/unicode/norm"
)

const (
	tinyVocab  = "testdata/tiny_bpe_vocab.json"
	tinyMerges = "testdata/tiny_bpe_merges.txt"
	tinyJSON   = "testdata/tiny_bpe_tokenizer.json"
	qwen2Dir   = "../../data/qwen2-tokenizer"
)

var (
	qwen2Once sync.Once
	qwen2Tok  *Tokenizer
	qwen2Err  error
)

// qwen2 loads the full Qwen2 tokenizer once for all tests.
func qwen2(tb testing.TB) *Tokenizer {
	tb.Helper()
	qwen2Once.Do(func() { qwen2Tok, qwen2Err = Load(qwen2Dir) })
	if qwen2Err != nil {
		tb.Fatal(qwen2Err)
	}
	return qwen2Tok
}

type vector struct {
	Name          string         `json:"name"`
	SpecialTokens map[string]int `json:"special_tokens"`
	Text          string         `json:"text"`
	IDs           []int          `json:"ids"`
}

// TestTorchtuneVectors checks the 7 expected id lists written in
// torchtune's Qwen2/Qwen2.5/Qwen3 tokenizer tests, with its tiny vocabulary.
func TestTorchtuneVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/expected_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors []vector
	if err := json.Unmarshal(raw, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors) != 7 {
		t.Fatalf("got %d vectors, want 7", len(vectors))
	}
	for _, v := range vectors {
		t.Run(v.Name, func(t *testing.T) {
			tok, err := LoadVocabMerges(tinyVocab, tinyMerges, v.SpecialTokens)
			if err != nil {
				t.Fatal(err)
			}
			got := tok.EncodeWithSpecial(v.Text)
			if !slices.Equal(got, v.IDs) {
				t.Fatalf("ids differ\n got %v\nwant %v", got, v.IDs)
			}
			text, err := tok.Decode(got)
			if err != nil || text != v.Text {
				t.Fatalf("decode = %q, %v; want %q", text, err, v.Text)
			}
		})
	}
}

// TestTokenizerJSONMatchesVocabMerges loads the same tiny tokenizer from
// tokenizer.json and from vocab.json + merges.txt.
func TestTokenizerJSONMatchesVocabMerges(t *testing.T) {
	fromJSON, err := LoadJSON(tinyJSON)
	if err != nil {
		t.Fatal(err)
	}
	special := map[string]int{"<|endoftext|>": 2000, "<|im_start|>": 2001, "<|im_end|>": 2002}
	fromFiles, err := LoadVocabMerges(tinyVocab, tinyMerges, special)
	if err != nil {
		t.Fatal(err)
	}
	case_, _ := os.ReadFile("testdata/case.txt")
	text := string(case_)
	a, b := fromJSON.EncodeWithSpecial(text), fromFiles.EncodeWithSpecial(text)
	if !slices.Equal(a, b) {
		t.Fatalf("tokenizer.json and vocab+merges disagree")
	}
	if id, err := fromJSON.SpecialID("<|im_end|>"); err != nil || id != 2002 {
		t.Fatalf("SpecialID(<|im_end|>) = %d, %v; want 2002", id, err)
	}
}

type referenceFile struct {
	Version string `json:"tokenizers_version"`
	Cases   []struct {
		Text string `json:"text"`
		IDs  []int  `json:"ids"`
	} `json:"cases"`
}

// TestQwen2MatchesHuggingFace compares with ids from Hugging Face tokenizers
// on the full Qwen2 vocabulary (testdata/gen_reference.py).
func TestQwen2MatchesHuggingFace(t *testing.T) {
	tok := qwen2(t)
	raw, err := os.ReadFile("testdata/qwen2_reference.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref referenceFile
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	for i, c := range ref.Cases {
		got := tok.EncodeWithSpecial(c.Text)
		if !slices.Equal(got, c.IDs) {
			t.Errorf("case %d %.40q: ids differ from tokenizers %s\n got %v\nwant %v", i, c.Text, ref.Version, got, c.IDs)
		}
		if !strings.Contains(c.Text, "<|") && !slices.Equal(tok.Encode(c.Text), c.IDs) {
			t.Errorf("case %d: Encode differs from EncodeWithSpecial on text without added tokens", i)
		}
	}
}

// rollouts returns the two Search-R1 rollouts of case.txt, which are
// separated by four line breaks.
func rollouts(tb testing.TB) []string {
	raw, err := os.ReadFile("testdata/case.txt")
	if err != nil {
		tb.Fatal(err)
	}
	first, second, ok := strings.Cut(string(raw), "\n\n\n\n<|im_start|>")
	if !ok {
		tb.Fatal("case.txt: no blank lines between the two rollouts")
	}
	return []string{first, "<|im_start|>" + second}
}

// TestCaseRoundTrip encodes both rollouts of case.txt with the full Qwen2
// vocabulary and decodes them back byte for byte.
func TestCaseRoundTrip(t *testing.T) {
	tok := qwen2(t)
	rs := rollouts(t)
	if len(rs) != 2 || !strings.HasPrefix(rs[1], "<|im_start|>system") {
		t.Fatalf("could not split case.txt into two rollouts")
	}
	imStart, _ := tok.SpecialID("<|im_start|>")
	for i, r := range rs {
		for _, withSpecial := range []bool{false, true} {
			ids := tok.Encode(r)
			if withSpecial {
				ids = tok.EncodeWithSpecial(r)
			}
			if slices.Contains(ids, imStart) != withSpecial {
				t.Errorf("rollout %d: <|im_start|> id present = %v, want %v", i, !withSpecial, withSpecial)
			}
			back, err := tok.Decode(ids)
			if err != nil {
				t.Fatal(err)
			}
			if back != r {
				t.Errorf("rollout %d (special %v): round trip differs", i, withSpecial)
			}
		}
	}
}

// TestSplitMatchesRegex checks the hand-written splitter against regexp2
// running the pattern itself.
func TestSplitMatchesRegex(t *testing.T) {
	ref := newRegexSplitter(t)
	inputs := []string{
		"", " ", "  ", "a", "Hello world", "  x", "x  ", "x  \n  y", "\r\n\r\n", " \n ", "\t\tfoo",
		"it's IT'S we'Re 'll'd 'x", "3.14 and 12345", "!!abc ,abc (abc) ' abc", " !!!\n\nx",
		"中文，测试。", "e\u0301", "\u00a0a \u3000b", "😀😀 x", "a\u200bb", "\xff\xfe bad utf8 \xc3",
		"word\n\n\n   next", "  \t  \n", "x \u0085y", "'", "a'", "''s", " ' s",
	}
	raw, _ := os.ReadFile("testdata/case.txt")
	inputs = append(inputs, string(raw))
	for _, s := range inputs {
		if got, want := splitAll(s), ref(s); !slices.Equal(got, want) {
			t.Errorf("split %q\n got %q\nwant %q", s, got, want)
		}
	}
}

func splitAll(s string) []string {
	var out []string
	splitQwen2(s, func(p string) { out = append(out, p) })
	return out
}

// FuzzSplit compares the splitter with regexp2 on valid UTF-8 input (regexp2
// reads invalid bytes as U+FFFD, so offsets differ there by design).
func FuzzSplit(f *testing.F) {
	for _, s := range []string{"Hello world", " it's 3 ", "x  \n\t y", "中文，测试", "!!abc"} {
		f.Add(s)
	}
	ref := newRegexSplitter(f)
	f.Fuzz(func(t *testing.T, s string) {
		if !validUTF8(s) {
			return
		}
		if got, want := splitAll(s), ref(s); !slices.Equal(got, want) {
			t.Fatalf("split %q\n got %q\nwant %q", s, got, want)
		}
	})
}

// FuzzRoundTrip checks Decode(Encode(s)) == NFC(s) with the full vocabulary.
func FuzzRoundTrip(f *testing.F) {
	raw, _ := os.ReadFile("testdata/case.txt")
	for _, s := range []string{"", "Hello world", "cafe\u0301", "\xff\xfe", " \n\n x", string(raw[:600])} {
		f.Add(s)
	}
	tok := qwen2(f)
	f.Fuzz(func(t *testing.T, s string) {
		for _, ids := range [][]int{tok.Encode(s), tok.EncodeWithSpecial(s)} {
			back, err := tok.Decode(ids)
			if err != nil {
				t.Fatal(err)
			}
			if want := norm.NFC.String(s); back != want {
				t.Fatalf("Decode(Encode(%q)) = %q, want NFC %q", s, back, want)
			}
		}
	})
}

// TestLongPieceMatchesShort checks that the heap merge used for long pieces
// gives the same ids as the quadratic scan.
func TestLongPieceMatchesShort(t *testing.T) {
	tok := qwen2(t)
	for _, piece := range []string{
		strings.Repeat(" ", 200), strings.Repeat("ab", 70), strings.Repeat("!", 99),
		strings.Repeat("Supercalifragilistic", 5), strings.Repeat("=", 64) + "\n\n", strings.Repeat("中", 40),
	} {
		syms := make([]int32, len(piece))
		for i := range syms {
			syms[i] = tok.byteID[piece[i]]
		}
		long := tok.mergeLong(slices.Clone(syms))
		short := tok.mergeShort(syms)
		if !slices.Equal(long, short) {
			t.Errorf("piece %.20q…: heap %v, scan %v", piece, long, short)
		}
	}
}

func TestSpecialTokens(t *testing.T) {
	tok := qwen2(t)
	for name, want := range map[string]int{"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645, "<|file_sep|>": 151664} {
		if id, err := tok.SpecialID(name); err != nil || id != want {
			t.Errorf("SpecialID(%q) = %d, %v; want %d", name, id, err, want)
		}
	}
	if got := tok.EOSIDs(); !slices.Equal(got, []int{151645, 151643}) {
		t.Errorf("EOSIDs = %v, want [151645 151643] (eos_token <|im_end|>, then <|endoftext|>)", got)
	}
	if tok.VocabSize() != 151665 {
		t.Errorf("VocabSize = %d, want 151665", tok.VocabSize())
	}
	_, err := tok.SpecialID("<|im_middle|>")
	if !errors.Is(err, ErrUnknownSpecialToken) || !strings.Contains(err.Error(), "<|im_middle|>") || !strings.Contains(err.Error(), "<|im_end|>") {
		t.Errorf("unknown special token: error %v should wrap ErrUnknownSpecialToken, name the token and list the known ones", err)
	}
	text := "<|im_start|>user\nhi<|im_end|>"
	if ids := tok.Encode(text); slices.Contains(ids, 151644) || slices.Contains(ids, 151645) {
		t.Errorf("Encode parsed added tokens: %v", ids)
	}
	if ids := tok.EncodeWithSpecial(text); ids[0] != 151644 || ids[len(ids)-1] != 151645 {
		t.Errorf("EncodeWithSpecial did not parse added tokens: %v", ids)
	}
	if _, err := tok.Decode([]int{1, 999999}); !errors.Is(err, ErrUnknownID) {
		t.Errorf("Decode of an id out of range: %v, want ErrUnknownID", err)
	}
}

func TestLoadErrors(t *testing.T) {
	empty := t.TempDir()
	_, err := Load(empty)
	if !errors.Is(err, ErrMissingFiles) || !strings.Contains(err.Error(), "vocab.json") || !strings.Contains(err.Error(), empty) {
		t.Errorf("empty dir: %v; want ErrMissingFiles naming the dir and the missing files", err)
	}
	onlyVocab := t.TempDir()
	copyFile(t, tinyVocab, filepath.Join(onlyVocab, VocabFile))
	_, err = Load(onlyVocab)
	if !errors.Is(err, ErrMissingFiles) || !strings.Contains(err.Error(), "merges.txt") {
		t.Errorf("dir without merges.txt: %v; want ErrMissingFiles naming merges.txt", err)
	}
	bad := t.TempDir()
	copyFile(t, tinyVocab, filepath.Join(bad, VocabFile))
	if err := os.WriteFile(filepath.Join(bad, MergesFile), []byte("#version: 0.2\nĠ t\nnot-a-pair\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err = Load(bad); err == nil || !strings.Contains(err.Error(), "merges.txt:3") {
		t.Errorf("bad merges line: %v; want an error naming merges.txt:3", err)
	}
	if _, err := LoadVocabMerges(filepath.Join(empty, "nope.json"), tinyMerges, nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing vocab file: %v; want os.ErrNotExist", err)
	}
}

// TestLoadJSONRefusesOtherPipelines: a tokenizer.json whose pipeline is not
// Qwen2's (another split pattern, no normalizer, a prefix space, GPT-2's
// pre-tokenizer, stripping added tokens) is refused instead of being
// tokenized wrongly.
func TestLoadJSONRefusesOtherPipelines(t *testing.T) {
	raw, err := os.ReadFile(tinyJSON)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := json.Marshal(Qwen2SplitPattern)
	gpt2, _ := json.Marshal(`'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`)
	if !bytes.Contains(raw, old) {
		t.Fatal("fixture does not hold the Qwen2 pattern")
	}
	path := filepath.Join(t.TempDir(), JSONFile)
	if err := os.WriteFile(path, bytes.Replace(raw, old, gpt2, 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadJSON(path); err == nil || !strings.Contains(err.Error(), "not Qwen2's") {
		t.Fatalf("GPT-2 pattern: %v; want an error", err)
	}
	// Pipelines Hugging Face encodes differently from Qwen2's: each one
	// used to load and give other ids.
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, says string
		edit       func(d map[string]any)
	}{
		{"no normalizer", "normalizer none", func(d map[string]any) { d["normalizer"] = nil }},
		{"prefix space", "add_prefix_space", func(d map[string]any) {
			d["pre_tokenizer"].(map[string]any)["pretokenizers"].([]any)[1].(map[string]any)["add_prefix_space"] = true
		}},
		{"GPT-2's ByteLevel regex only", "Sequence of Split and ByteLevel", func(d map[string]any) {
			d["pre_tokenizer"] = map[string]any{"type": "ByteLevel", "add_prefix_space": false, "use_regex": true}
		}},
		{"added token lstrip", "lstrip", func(d map[string]any) {
			d["added_tokens"].([]any)[0].(map[string]any)["lstrip"] = true
		}},
	} {
		var d map[string]any
		b, _ := json.Marshal(doc)
		json.Unmarshal(b, &d) // a deep copy
		c.edit(d)
		b, _ = json.Marshal(d)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadJSON(path); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v; want an error saying %q", c.name, err, c.says)
		}
	}
}

func TestDefaultDir(t *testing.T) {
	dir, err := DefaultDir()
	if err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.Abs(qwen2Dir)
	if dir != want {
		t.Fatalf("DefaultDir = %s, want %s", dir, want)
	}
}

// TestConcurrentEncode encodes from 8 goroutines sharing one cold cache
// (run with -race to check the locking).
func TestConcurrentEncode(t *testing.T) {
	shared := qwen2(t)
	tok := &Tokenizer{}
	*tok = *shared // the tables are read-only; only the cache is new
	tok.cache = newPieceCache(cacheLimit)
	rs := rollouts(t)
	want := [][]int{shared.Encode(rs[0]), shared.Encode(rs[1])}
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rs {
				k := (g + i) % len(rs)
				if got := tok.Encode(rs[k]); !slices.Equal(got, want[k]) {
					errs <- "concurrent Encode differs"
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	raw, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}
