package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// Qwen2SplitPattern is the pre-tokenizer regular expression of Qwen2 and
// Qwen2.5 (PCRE syntax; it needs a negative lookahead). splitQwen2 implements
// it by hand for speed; the tests check the two agree.
const Qwen2SplitPattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

// Character classes of the pattern. Whitespace is unicode.IsSpace (what
// regexp2's \s means), letters are \p{L}, numbers \p{N}; everything else,
// including bytes that are not valid UTF-8, is "other".
const (
	classOther = iota
	classLetter
	classNumber
	classSpace
)

func classOf(r rune) int {
	if r < utf8.RuneSelf {
		return asciiClass[r]
	}
	switch {
	case unicode.IsLetter(r):
		return classLetter
	case unicode.IsNumber(r):
		return classNumber
	case unicode.IsSpace(r):
		return classSpace
	}
	return classOther
}

var asciiClass = func() (c [utf8.RuneSelf]int) {
	for r := rune(0); r < utf8.RuneSelf; r++ {
		switch {
		case unicode.IsLetter(r):
			c[r] = classLetter
		case unicode.IsNumber(r):
			c[r] = classNumber
		case unicode.IsSpace(r):
			c[r] = classSpace
		default:
			c[r] = classOther
		}
	}
	return c
}()

// decodeRune is utf8.DecodeRuneInString with a fast path for ASCII. An
// invalid byte comes back as utf8.RuneError of width 1 and counts as "other".
func decodeRune(s string, i int) (rune, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return rune(c), 1
	}
	return utf8.DecodeRuneInString(s[i:])
}

// splitQwen2 calls emit with each piece of s, in order, as the Qwen2 split
// pattern cuts it (behaviour "Isolated": every match is a piece, and the
// pattern matches everywhere, so the pieces concatenate to s).
func splitQwen2(s string, emit func(piece string)) {
	for i := 0; i < len(s); {
		n := matchQwen2(s, i)
		emit(s[i : i+n])
		i += n
	}
}

// matchQwen2 returns the byte length of the pattern's match at i, trying the
// alternatives in the pattern's order. It is never zero.
func matchQwen2(s string, i int) int {
	r, w := decodeRune(s, i)
	// 1. Contractions, case-insensitive.
	if r == '\'' && i+1 < len(s) {
		if n := contraction(s[i+1:]); n > 0 {
			return 1 + n
		}
	}
	c := classOf(r)
	// 2. [^\r\n\p{L}\p{N}]?\p{L}+
	if c == classLetter {
		return w + letterRun(s, i+w)
	}
	if c != classNumber && r != '\r' && r != '\n' && i+w < len(s) {
		if r2, _ := decodeRune(s, i+w); classOf(r2) == classLetter {
			return w + letterRun(s, i+w)
		}
	}
	// 3. \p{N}
	if c == classNumber {
		return w
	}
	// 4. ` ?[^\s\p{L}\p{N}]+[\r\n]*`
	start := i
	if r == ' ' && i+1 < len(s) {
		if r2, _ := decodeRune(s, i+1); classOf(r2) == classOther {
			start = i + 1
			c = classOther
		}
	}
	if c == classOther {
		j := start
		for j < len(s) {
			r2, w2 := decodeRune(s, j)
			if classOf(r2) != classOther {
				break
			}
			j += w2
		}
		for j < len(s) && (s[j] == '\r' || s[j] == '\n') {
			j++
		}
		return j - i
	}
	// c is classSpace from here on. Find the whitespace run and its last
	// line break.
	end, lastBreak := i, -1
	prev := i
	for end < len(s) {
		r2, w2 := decodeRune(s, end)
		if classOf(r2) != classSpace {
			break
		}
		if r2 == '\r' || r2 == '\n' {
			lastBreak = end + w2
		}
		prev = end
		end += w2
	}
	// 5. \s*[\r\n]+ ends after the run's last line break.
	if lastBreak >= 0 {
		return lastBreak - i
	}
	// 6. \s+(?!\S): the whole run at the end of the text, else all of it but
	// its last rune, which is left to lead the next piece.
	if end == len(s) {
		return end - i
	}
	if prev > i {
		return prev - i
	}
	// 7. \s+ (a single whitespace rune before a non-space).
	return end - i
}

// contraction returns the length of 's 't 're 've 'm 'll 'd (any case) after
// the apostrophe, or 0.
func contraction(s string) int {
	lower := func(b byte) byte { return b | 0x20 }
	a := lower(s[0])
	switch a {
	case 's', 't', 'm', 'd':
		return 1
	}
	if len(s) < 2 {
		return 0
	}
	b := lower(s[1])
	switch {
	case a == 'r' && b == 'e', a == 'v' && b == 'e', a == 'l' && b == 'l':
		return 2
	}
	return 0
}

func letterRun(s string, i int) int {
	j := i
	for j < len(s) {
		r, w := decodeRune(s, j)
		if classOf(r) != classLetter {
			break
		}
		j += w
	}
	return j - i
}
