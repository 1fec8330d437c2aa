package router

import "bytes"

// Role is the adapter a position is computed with; its value is the index
// that role_ids carries into the compiled graphs.
type Role uint8

// The roles of Search-R1 rollouts.
const (
	Reason Role = 0
	Tool   Role = 1
)

func (r Role) String() string {
	switch r {
	case Reason:
		return "reason"
	case Tool:
		return "tool"
	}
	return "role?"
}

// Int64s returns roles as the int64 values of a role_ids tensor.
func Int64s(roles []Role) []int64 {
	out := make([]int64, len(roles))
	for i, r := range roles {
		out[i] = int64(r)
	}
	return out
}

// Vocabulary gives the raw bytes of a token id; *tokenizer.Tokenizer is one.
// Ids it does not know (nil bytes) count as empty text.
type Vocabulary interface {
	TokenBytes(id int) []byte
}

// Tags are the strings that open and close a tool span in generated text.
type Tags struct {
	Open, Close string
}

// SearchR1 are Search-R1's query tags.
var SearchR1 = Tags{Open: "<search>", Close: "</search>"}

// Router computes roles incrementally: feed each token of the sequence in
// order, and get its position's role back. Not safe for concurrent use; use
// one Router per sequence.
type Router struct {
	vocab  Vocabulary
	open   matcher
	close  matcher
	inside bool
}

// New returns a Router for one sequence with the given tags, which must not
// be empty.
func New(vocab Vocabulary, tags Tags) *Router {
	if tags.Open == "" || tags.Close == "" {
		panic("router: empty tag")
	}
	return &Router{vocab: vocab, open: newMatcher(tags.Open), close: newMatcher(tags.Close)}
}

// Push consumes the next token of the sequence and returns the role of its
// position. generated tells whether the policy sampled the token (true) or
// the environment inserted it (prompt, observation: false).
func (r *Router) Push(id int, generated bool) Role {
	if !generated {
		r.Reset()
		return Reason
	}
	for _, b := range r.vocab.TokenBytes(id) {
		if r.inside {
			if r.close.step(b) {
				r.inside = false
				r.open.reset()
			}
		} else if r.open.step(b) {
			r.inside = true
			r.close.reset()
		}
	}
	return r.Current()
}

// Current returns the role of the position last pushed (Reason before any).
func (r *Router) Current() Role {
	if r.inside {
		return Tool
	}
	return Reason
}

// Reset forgets the scanned text, as an inserted token does.
func (r *Router) Reset() {
	r.inside = false
	r.open.reset()
	r.close.reset()
}

// matcher finds a pattern in a byte stream (Knuth–Morris–Pratt), so that a
// tag split across any number of tokens is still found.
type matcher struct {
	pattern []byte
	fail    []int
	k       int // bytes of pattern matched so far
}

func newMatcher(pattern string) matcher {
	p := []byte(pattern)
	fail := make([]int, len(p))
	for i, k := 1, 0; i < len(p); i++ {
		for k > 0 && p[i] != p[k] {
			k = fail[k-1]
		}
		if p[i] == p[k] {
			k++
		}
		fail[i] = k
	}
	return matcher{pattern: p, fail: fail}
}

// step consumes one byte and reports whether it completes the pattern.
func (m *matcher) step(b byte) bool {
	for m.k > 0 && b != m.pattern[m.k] {
		m.k = m.fail[m.k-1]
	}
	if b == m.pattern[m.k] {
		m.k++
	}
	if m.k == len(m.pattern) {
		m.k = 0 // matches never overlap: the scan switches tags after one
		return true
	}
	return false
}

func (m *matcher) reset() { m.k = 0 }

// Roles returns the role of every position of a finished sequence. generated
// marks the tokens the policy sampled (the loss mask); nil means all. It
// decodes each run of generated tokens, finds the tool spans in its text, and
// gives position t role tool when the end of token t's bytes lies in a span
// [end of open tag, end of close tag) — the same rule Router follows.
func Roles(vocab Vocabulary, ids []int, generated []bool, tags Tags) []Role {
	roles := make([]Role, len(ids))
	isGen := func(t int) bool { return generated == nil || generated[t] }
	for start := 0; start < len(ids); {
		if !isGen(start) {
			start++
			continue
		}
		end := start
		for end < len(ids) && isGen(end) {
			end++
		}
		var text []byte
		tokenEnd := make([]int, 0, end-start)
		for _, id := range ids[start:end] {
			text = append(text, vocab.TokenBytes(id)...)
			tokenEnd = append(tokenEnd, len(text))
		}
		spans := toolSpans(text, tags)
		for i, e := range tokenEnd {
			for _, s := range spans {
				if s[0] <= e && e < s[1] {
					roles[start+i] = Tool
					break
				}
			}
		}
		start = end
	}
	return roles
}

// toolSpans returns [end of open tag, end of close tag) for each tool span of
// text; an unclosed span runs to past the end.
func toolSpans(text []byte, tags Tags) [][2]int {
	var spans [][2]int
	for from := 0; ; {
		i := bytes.Index(text[from:], []byte(tags.Open))
		if i < 0 {
			return spans
		}
		openEnd := from + i + len(tags.Open)
		j := bytes.Index(text[openEnd:], []byte(tags.Close))
		if j < 0 {
			return append(spans, [2]int{openEnd, len(text) + 1})
		}
		closeEnd := openEnd + j + len(tags.Close)
		spans = append(spans, [2]int{openEnd, closeEnd})
		from = closeEnd
	}
}
