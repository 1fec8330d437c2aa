package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// File names of a tokenizer directory, as Hugging Face writes them.
const (
	VocabFile  = "vocab.json"
	MergesFile = "merges.txt"
	JSONFile   = "tokenizer.json"
	ConfigFile = "tokenizer_config.json"
)

// ErrMissingFiles is returned by Load when a directory holds neither
// tokenizer.json nor vocab.json with merges.txt.
var ErrMissingFiles = errors.New("tokenizer: missing tokenizer files")

// Load reads a tokenizer directory: tokenizer.json, or vocab.json and
// merges.txt, plus tokenizer_config.json's added tokens and eos_token when
// that file is present.
func Load(dir string) (*Tokenizer, error) {
	var (
		t   *Tokenizer
		err error
	)
	jsonPath := filepath.Join(dir, JSONFile)
	vocabPath, mergesPath := filepath.Join(dir, VocabFile), filepath.Join(dir, MergesFile)
	switch {
	case fileExists(jsonPath):
		t, err = LoadJSON(jsonPath)
	case fileExists(vocabPath) && fileExists(mergesPath):
		t, err = LoadVocabMerges(vocabPath, mergesPath, nil)
	default:
		var missing []string
		for _, p := range []string{vocabPath, mergesPath} {
			if !fileExists(p) {
				missing = append(missing, filepath.Base(p))
			}
		}
		return nil, fmt.Errorf("%w in %s: need %s, or %s and %s (missing %s); point --tokenizer at a Hugging Face Qwen2 tokenizer directory",
			ErrMissingFiles, dir, JSONFile, VocabFile, MergesFile, strings.Join(missing, ", "))
	}
	if err != nil {
		return nil, err
	}
	if cfg := filepath.Join(dir, ConfigFile); fileExists(cfg) {
		if err := t.applyConfig(cfg); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// LoadVocabMerges builds a tokenizer from vocab.json and merges.txt, with
// the given added tokens (text → id; may be nil).
func LoadVocabMerges(vocabPath, mergesPath string, added map[string]int) (*Tokenizer, error) {
	raw, err := os.ReadFile(vocabPath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: read vocabulary: %w", err)
	}
	var vocab map[string]int
	if err := json.Unmarshal(raw, &vocab); err != nil {
		return nil, fmt.Errorf("tokenizer: parse %s: %w (want a JSON object of token → id)", vocabPath, err)
	}
	f, err := os.Open(mergesPath)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: read merges: %w", err)
	}
	defer f.Close()
	var merges [][2]string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimRight(sc.Text(), "\r")
		if text == "" || (line == 1 && strings.HasPrefix(text, "#version")) {
			continue
		}
		left, right, ok := strings.Cut(text, " ")
		if !ok || left == "" || right == "" || strings.Contains(right, " ") {
			return nil, fmt.Errorf("tokenizer: %s:%d: want two tokens separated by one space, got %q", mergesPath, line, text)
		}
		merges = append(merges, [2]string{left, right})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("tokenizer: read %s: %w", mergesPath, err)
	}
	var addedList []addedToken
	for content, id := range added {
		addedList = append(addedList, addedToken{content: content, id: id, special: true})
	}
	return build(vocab, merges, addedList, vocabPath)
}

// LoadJSON builds a tokenizer from a Hugging Face tokenizer.json with a BPE
// model (merges as "a b" strings or as pairs) and its added tokens.
func LoadJSON(path string) (*Tokenizer, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tokenizer: read %w", err)
	}
	var doc struct {
		Normalizer   *struct{ Type string } `json:"normalizer"`
		PreTokenizer json.RawMessage        `json:"pre_tokenizer"`
		Model        struct {
			Type         string          `json:"type"`
			IgnoreMerges bool            `json:"ignore_merges"`
			Vocab        map[string]int  `json:"vocab"`
			Merges       json.RawMessage `json:"merges"`
		} `json:"model"`
		AddedTokens []jsonAddedToken `json:"added_tokens"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("tokenizer: parse %s: %w", path, err)
	}
	if doc.Model.Type != "" && doc.Model.Type != "BPE" {
		return nil, fmt.Errorf("tokenizer: %s: model type %q, want BPE", path, doc.Model.Type)
	}
	if err := checkQwen2Pipeline(doc.Normalizer, doc.PreTokenizer, doc.Model.IgnoreMerges, doc.AddedTokens); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: %w; dartc implements the Qwen2 pipeline only", path, err)
	}
	var merges [][2]string
	var asStrings []string
	if err := json.Unmarshal(doc.Model.Merges, &asStrings); err == nil {
		for i, m := range asStrings {
			left, right, ok := strings.Cut(m, " ")
			if !ok {
				return nil, fmt.Errorf("tokenizer: %s: merge %d %q: want two tokens separated by a space", path, i, m)
			}
			merges = append(merges, [2]string{left, right})
		}
	} else if err := json.Unmarshal(doc.Model.Merges, &merges); err != nil {
		return nil, fmt.Errorf("tokenizer: %s: model.merges: %w (want strings \"a b\" or pairs [a, b])", path, err)
	}
	var added []addedToken
	for _, a := range doc.AddedTokens {
		added = append(added, addedToken{content: a.Content, id: a.ID, special: a.Special})
	}
	return build(doc.Model.Vocab, merges, added, path)
}

// checkQwen2Pipeline refuses a tokenizer.json whose pipeline is not
// exactly Qwen2's: NFC, then Split(Qwen2's regex, isolated) and ByteLevel
// without a prefix space or its own regex, and added tokens matched as
// written (no lstrip, rstrip, single_word or normalized). Anything else
// would load and encode to ids Hugging Face does not produce.
func checkQwen2Pipeline(normalizer *struct{ Type string }, preTokenizer json.RawMessage, ignoreMerges bool, added []jsonAddedToken) error {
	if normalizer == nil || normalizer.Type != "NFC" {
		got := "none"
		if normalizer != nil {
			got = fmt.Sprintf("%q", normalizer.Type)
		}
		return fmt.Errorf("normalizer %s, want NFC", got)
	}
	if ignoreMerges {
		return errors.New("model.ignore_merges is set")
	}
	type preTok struct {
		Type           string `json:"type"`
		Pattern        struct{ Regex string }
		Behavior       string `json:"behavior"`
		Invert         bool   `json:"invert"`
		AddPrefixSpace bool   `json:"add_prefix_space"`
		UseRegex       bool   `json:"use_regex"`
	}
	var seq struct {
		Type          string   `json:"type"`
		Pretokenizers []preTok `json:"pretokenizers"`
	}
	if len(preTokenizer) == 0 || bytes.Equal(preTokenizer, []byte("null")) {
		return errors.New("no pre_tokenizer, want Qwen2's Split and ByteLevel")
	}
	if err := json.Unmarshal(preTokenizer, &seq); err != nil {
		return fmt.Errorf("pre_tokenizer: %w", err)
	}
	ps := seq.Pretokenizers
	switch {
	case seq.Type != "Sequence" || len(ps) != 2 || ps[0].Type != "Split" || ps[1].Type != "ByteLevel":
		return fmt.Errorf("pre_tokenizer %s, want a Sequence of Split and ByteLevel", strings.TrimSpace(string(preTokenizer)))
	case ps[0].Pattern.Regex != Qwen2SplitPattern:
		return fmt.Errorf("pre-tokenizer pattern %q is not Qwen2's", ps[0].Pattern.Regex)
	case ps[0].Behavior != "Isolated" || ps[0].Invert:
		return fmt.Errorf("pre-tokenizer Split behavior %q, invert %v: want Isolated, false", ps[0].Behavior, ps[0].Invert)
	case ps[1].AddPrefixSpace || ps[1].UseRegex:
		return fmt.Errorf("pre-tokenizer ByteLevel add_prefix_space %v, use_regex %v: want false, false", ps[1].AddPrefixSpace, ps[1].UseRegex)
	}
	for _, a := range added {
		if a.LStrip || a.RStrip || a.SingleWord || a.Normalized {
			return fmt.Errorf("added token %q (id %d) sets lstrip, rstrip, single_word or normalized: want them all false", a.Content, a.ID)
		}
	}
	return nil
}

// jsonAddedToken is an entry of tokenizer.json's added_tokens.
type jsonAddedToken struct {
	ID         int    `json:"id"`
	Content    string `json:"content"`
	Special    bool   `json:"special"`
	LStrip     bool   `json:"lstrip"`
	RStrip     bool   `json:"rstrip"`
	SingleWord bool   `json:"single_word"`
	Normalized bool   `json:"normalized"`
}

func build(vocab map[string]int, merges [][2]string, added []addedToken, source string) (*Tokenizer, error) {
	if len(vocab) == 0 {
		return nil, fmt.Errorf("tokenizer: %s: empty vocabulary", source)
	}
	t := &Tokenizer{
		merges:  make(map[uint64]merge, len(merges)),
		addedBy: make(map[string]int),
		cache:   newPieceCache(cacheLimit),
	}
	size := 0
	for _, id := range vocab {
		if id < 0 {
			return nil, fmt.Errorf("tokenizer: %s: negative id %d", source, id)
		}
		size = max(size, id+1)
	}
	for _, a := range added {
		size = max(size, a.id+1)
	}
	t.tokens = make([][]byte, size)
	for tok, id := range vocab {
		raw, ok := unmapByteLevel(tok)
		if !ok {
			return nil, fmt.Errorf("tokenizer: %s: token %q (id %d) is not spelled in byte-level runes; is this a byte-level BPE vocabulary?", source, tok, id)
		}
		t.tokens[id] = raw
	}
	for b := 0; b < 256; b++ {
		t.byteID[b] = -1 // toy vocabularies lack some bytes; Qwen2's has all
		if id, ok := vocab[string(byteRunes[b])]; ok {
			t.byteID[b] = int32(id)
		}
	}
	for rank, m := range merges {
		left, okL := vocab[m[0]]
		right, okR := vocab[m[1]]
		merged, okM := vocab[m[0]+m[1]]
		if !okL || !okR || !okM {
			return nil, fmt.Errorf("tokenizer: %s: merge %d %q %q uses a token that is not in the vocabulary", source, rank+1, m[0], m[1])
		}
		key := pairKey(int32(left), int32(right))
		if _, dup := t.merges[key]; !dup { // the first rank of a pair wins
			t.merges[key] = merge{rank: int32(rank), id: int32(merged)}
		}
	}
	for _, a := range added {
		t.addToken(a)
	}
	t.setDefaultEOS("")
	return t, nil
}

// addToken adds or replaces an added token.
func (t *Tokenizer) addToken(a addedToken) {
	if a.content == "" {
		return
	}
	if a.id >= len(t.tokens) {
		t.tokens = append(t.tokens, make([][]byte, a.id+1-len(t.tokens))...)
	}
	t.tokens[a.id] = []byte(a.content)
	if _, ok := t.addedBy[a.content]; !ok {
		t.added = append(t.added, a)
	}
	t.addedBy[a.content] = a.id
	for i := range t.added {
		if t.added[i].content == a.content {
			t.added[i].id = a.id
		}
	}
	sort.SliceStable(t.added, func(i, j int) bool { return len(t.added[i].content) > len(t.added[j].content) })
	t.addedFirst[a.content[0]] = true
}

// setDefaultEOS sets the end-of-sequence ids: eos (when given and known)
// then <|endoftext|>.
func (t *Tokenizer) setDefaultEOS(eos string) {
	t.eos = t.eos[:0]
	for _, name := range []string{eos, "<|endoftext|>"} {
		if id, ok := t.addedBy[name]; ok && name != "" && !containsInt(t.eos, id) {
			t.eos = append(t.eos, id)
		}
	}
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// applyConfig reads tokenizer_config.json: added_tokens_decoder and
// eos_token (a string or an object with "content").
func (t *Tokenizer) applyConfig(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("tokenizer: read %w", err)
	}
	var cfg struct {
		Added map[string]struct {
			Content string `json:"content"`
			Special bool   `json:"special"`
		} `json:"added_tokens_decoder"`
		EOS json.RawMessage `json:"eos_token"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return fmt.Errorf("tokenizer: parse %s: %w", path, err)
	}
	for key, a := range cfg.Added {
		id, err := strconv.Atoi(key)
		if err != nil || id < 0 {
			return fmt.Errorf("tokenizer: %s: added_tokens_decoder key %q is not a token id", path, key)
		}
		t.addToken(addedToken{content: a.Content, id: id, special: a.Special})
	}
	eos := ""
	if len(cfg.EOS) > 0 && !bytes.Equal(cfg.EOS, []byte("null")) {
		var obj struct {
			Content string `json:"content"`
		}
		if err := json.Unmarshal(cfg.EOS, &eos); err != nil {
			if err := json.Unmarshal(cfg.EOS, &obj); err != nil {
				return fmt.Errorf("tokenizer: %s: eos_token: want a string or {\"content\": ...}: %w", path, err)
			}
			eos = obj.Content
		}
		if _, ok := t.addedBy[eos]; !ok {
			return fmt.Errorf("tokenizer: %s: eos_token %q is not an added token", path, eos)
		}
	}
	t.setDefaultEOS(eos)
	return nil
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
