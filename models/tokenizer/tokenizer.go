package tokenizer

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrUnknownSpecialToken is returned by SpecialID for a name that is not an
// added token of the tokenizer.
var ErrUnknownSpecialToken = errors.New("tokenizer: unknown special token")

// ErrUnknownID is returned by Decode for an id outside the vocabulary.
var ErrUnknownID = errors.New("tokenizer: token id out of range")

// Tokenizer is a Qwen2/Qwen2.5 byte-level BPE tokenizer. It is immutable
// after loading apart from its piece cache, and safe for concurrent use.
type Tokenizer struct {
	tokens     [][]byte // id → the raw bytes it stands for (added tokens: their text)
	vocab      map[string]int
	byteID     [256]int32
	merges     map[uint64]merge
	added      []addedToken   // longest first, for matching in text
	addedFirst [256]bool      // first bytes of added tokens, to skip the rest fast
	addedBy    map[string]int // content → id
	eos        []int
	cache      *pieceCache
}

type addedToken struct {
	content string
	id      int
	special bool
}

// cacheLimit bounds the piece cache; at about 100 bytes an entry it stays
// near 100 MB in the worst case and is far larger than any text's vocabulary.
const cacheLimit = 1 << 20

// VocabSize is one past the largest id, added tokens included.
func (t *Tokenizer) VocabSize() int { return len(t.tokens) }

// TokenBytes returns the raw bytes token id stands for (an added token's
// text for added tokens), or nil for an id out of range. The slice must not
// be modified.
func (t *Tokenizer) TokenBytes(id int) []byte {
	if id < 0 || id >= len(t.tokens) {
		return nil
	}
	return t.tokens[id]
}

// Encode tokenizes text as plain text: added tokens written in it (such as
// "<|im_end|>") are tokenized like any other characters.
func (t *Tokenizer) Encode(text string) []int {
	return t.encodePlain(make([]int, 0, len(text)/3+1), text)
}

// EncodeWithSpecial tokenizes text, turning every occurrence of an added
// token's text into its id (leftmost first, the longest at a position).
func (t *Tokenizer) EncodeWithSpecial(text string) []int {
	ids := make([]int, 0, len(text)/3+1)
	start := 0
	for i := 0; i < len(text); {
		if a, ok := t.addedAt(text, i); ok {
			ids = t.encodePlain(ids, text[start:i])
			ids = append(ids, a.id)
			i += len(a.content)
			start = i
			continue
		}
		i++
	}
	return t.encodePlain(ids, text[start:])
}

func (t *Tokenizer) addedAt(text string, i int) (addedToken, bool) {
	if !t.addedFirst[text[i]] {
		return addedToken{}, false
	}
	for _, a := range t.added { // longest first
		if strings.HasPrefix(text[i:], a.content) {
			return a, true
		}
	}
	return addedToken{}, false
}

func (t *Tokenizer) encodePlain(dst []int, text string) []int {
	if text == "" {
		return dst
	}
	text = nfc(text)
	splitQwen2(text, func(piece string) {
		if ids, ok := t.cache.get(piece); ok {
			dst = append(dst, ids...)
			return
		}
		n := len(dst)
		dst = t.bpe(dst, piece)
		t.cache.put(strings.Clone(piece), append([]int(nil), dst[n:]...))
	})
	return dst
}

// Decode returns the text of ids: their bytes concatenated. Bytes that do
// not form valid UTF-8 (a character cut between tokens) are kept as they
// are, so Decode(Encode(s)) == NFC(s) for every string s.
func (t *Tokenizer) Decode(ids []int) (string, error) {
	var b strings.Builder
	for i, id := range ids {
		if id < 0 || id >= len(t.tokens) || t.tokens[id] == nil {
			return "", fmt.Errorf("%w: id %d at position %d (vocabulary size %d)", ErrUnknownID, id, i, len(t.tokens))
		}
		b.Write(t.tokens[id])
	}
	return b.String(), nil
}

// SpecialID returns the id of an added token by its text, such as
// "<|im_end|>".
func (t *Tokenizer) SpecialID(name string) (int, error) {
	if id, ok := t.addedBy[name]; ok {
		return id, nil
	}
	known := make([]string, 0, len(t.addedBy))
	for k := range t.addedBy {
		known = append(known, k)
	}
	sort.Strings(known)
	return 0, fmt.Errorf("%w %q (the tokenizer's added tokens are %s)", ErrUnknownSpecialToken, name, strings.Join(known, " "))
}

// AddedTokens returns the added tokens' texts by id.
func (t *Tokenizer) AddedTokens() map[int]string {
	m := make(map[int]string, len(t.added))
	for _, a := range t.added {
		m[a.id] = a.content
	}
	return m
}

// EOSIDs returns the ids that end a generation: the configured eos_token and
// "<|endoftext|>" when the tokenizer has it (Qwen2.5-Instruct ends turns with
// <|im_end|>, base models with <|endoftext|>).
func (t *Tokenizer) EOSIDs() []int { return append([]int(nil), t.eos...) }
