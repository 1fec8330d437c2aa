package bm25

import (
	"unicode"
	"unicode/utf8"
)

// Tokens calls emit with each lower-cased token of text, in order. The byte
// slice passed to emit is reused: copy it to keep it.
//
// The word split follows the Unicode word-boundary rules (UAX #29) that
// Lucene's StandardTokenizer implements, reduced to what matters for BM25:
//   - a token is a run of letters, digits, combining marks and connector
//     punctuation ("_");
//   - a run continues across one MidLetter (' ’ · :) between letters, one
//     MidNum (, ;) between digits, and one MidNumLet (. ') between two letters
//     or two digits, so "don't", "U.S" and "3.14" stay whole;
//   - ideographs, Hiragana and Thai, which UAX #29 does not join, are one
//     token per character;
//   - everything else separates tokens.
//
// Lower-casing is per code point (unicode.ToLower), as Lucene's
// LowerCaseFilter does.
func Tokens(text string, buf []byte, emit func(tok []byte)) []byte {
	tok := buf[:0]
	var prevWord rune // last rune appended to tok, 0 when tok is empty
	for i := 0; i < len(text); {
		r, size := rune(text[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(text[i:])
		}
		i += size
		switch classOf(r) {
		case classSingleton:
			if len(tok) > 0 {
				emit(tok)
				tok = tok[:0]
			}
			tok = utf8.AppendRune(tok, unicode.ToLower(r))
			emit(tok)
			tok, prevWord = tok[:0], 0
			continue
		case classWord:
			if r < utf8.RuneSelf {
				if 'A' <= r && r <= 'Z' {
					r += 'a' - 'A'
				}
				tok = append(tok, byte(r))
			} else {
				tok = utf8.AppendRune(tok, unicode.ToLower(r))
			}
			prevWord = r
			continue
		}
		if prevWord != 0 && isMid(r, prevWord) && i < len(text) {
			next, _ := utf8.DecodeRuneInString(text[i:])
			if classOf(next) == classWord && joins(prevWord, next) {
				tok = utf8.AppendRune(tok, r)
				prevWord = 0 // the next rune is a word rune, appended next round
				continue
			}
		}
		if len(tok) > 0 {
			emit(tok)
			tok = tok[:0]
		}
		prevWord = 0
	}
	if len(tok) > 0 {
		emit(tok)
	}
	return tok[:0]
}

const (
	classOther = iota
	classWord
	classSingleton
)

// asciiClass classifies the ASCII range without table searches.
var asciiClass = func() (t [utf8.RuneSelf]uint8) {
	for c := range t {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' {
			t[c] = classWord
		}
	}
	return t
}()

func classOf(r rune) uint8 {
	switch {
	case r < utf8.RuneSelf:
		return asciiClass[r]
	case isSingleton(r):
		return classSingleton
	case isWordRune(r):
		return classWord
	}
	return classOther
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Nd, r) ||
		unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r) || unicode.Is(unicode.Nl, r) ||
		unicode.Is(unicode.No, r) || r == '_'
}

// isSingleton reports runes that form a token on their own.
func isSingleton(r rune) bool {
	return unicode.Is(unicode.Han, r) || unicode.Is(unicode.Hiragana, r) || unicode.Is(unicode.Thai, r)
}

// isMid reports whether r may sit inside a token after prev (the class check;
// joins then looks at the rune after r).
func isMid(r, prev rune) bool {
	switch r {
	case '\'', '.', '\u2019':
		return true
	case ':', '\u00b7':
		return unicode.IsLetter(prev)
	case ',', ';':
		return unicode.IsDigit(prev)
	}
	return false
}

// joins reports whether a Mid rune between prev and next keeps one token:
// letters join letters, digits join digits.
func joins(prev, next rune) bool {
	return (unicode.IsLetter(prev) && unicode.IsLetter(next)) || (unicode.IsDigit(prev) && unicode.IsDigit(next))
}
