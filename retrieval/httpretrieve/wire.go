package httpretrieve

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/dartc/dartc/retrieval"
)

// appendResponse appends the /retrieve response body for results, as
// FastAPI's JSONResponse renders it (json.dumps with ensure_ascii=False,
// separators=(",", ":")). The server writes the same bytes in pieces:
// responseOpen, appendResults for each slice of queries, responseClose.
func appendResponse(dst []byte, results [][]retrieval.Passage, withScores bool) ([]byte, error) {
	dst = append(dst, responseOpen...)
	dst, err := appendResults(dst, results, withScores, true)
	if err != nil {
		return nil, err
	}
	return append(dst, responseClose...), nil
}

const (
	responseOpen  = `{"result":[`
	responseClose = "]}"
)

// appendResults appends the result lists of consecutive queries; first
// tells whether they open the "result" array (no leading comma).
func appendResults(dst []byte, results [][]retrieval.Passage, withScores, first bool) ([]byte, error) {
	for qi, ps := range results {
		if qi > 0 || !first {
			dst = append(dst, ',')
		}
		dst = append(dst, '[')
		for i, p := range ps {
			if i > 0 {
				dst = append(dst, ',')
			}
			if withScores {
				dst = append(dst, `{"document":`...)
			}
			dst = append(dst, `{"id":`...)
			dst = appendPyString(dst, p.ID)
			dst = append(dst, `,"contents":`...)
			dst = appendPyString(dst, p.Contents)
			dst = append(dst, '}')
			if withScores {
				if math.IsNaN(p.Score) || math.IsInf(p.Score, 0) {
					return nil, errNonFiniteScore
				}
				dst = append(dst, `,"score":`...)
				dst = appendPyFloat(dst, p.Score)
				dst = append(dst, '}')
			}
		}
		dst = append(dst, ']')
	}
	return dst, nil
}

// appendPyString appends s as a JSON string the way Python's json.dumps does
// with ensure_ascii=False: only '"', '\\' and control characters below 0x20
// are escaped. Invalid UTF-8 (which a Python str cannot hold) becomes U+FFFD.
func appendPyString(dst []byte, s string) []byte { return appendPyJSONString(dst, s, false) }

// appendPyASCIIString is appendPyString with ensure_ascii=True, json.dumps's
// default: everything outside ' '..'~' is escaped as \uXXXX, characters
// beyond the BMP as a surrogate pair.
func appendPyASCIIString(dst []byte, s string) []byte { return appendPyJSONString(dst, s, true) }

func appendPyJSONString(dst []byte, s string, ensureASCII bool) []byte {
	const hex = "0123456789abcdef"
	u4 := func(dst []byte, r rune) []byte {
		return append(dst, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
	}
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			i += size
			switch {
			case !ensureASCII && r == utf8.RuneError && size == 1:
				dst = append(dst, "\ufffd"...)
			case !ensureASCII:
				dst = append(dst, s[i-size:i]...)
			case r > 0xffff:
				hi, lo := utf16.EncodeRune(r)
				dst = u4(u4(dst, hi), lo)
			default:
				dst = u4(dst, r)
			}
			continue
		}
		i++
		switch c {
		case '"':
			dst = append(dst, `\"`...)
		case '\\':
			dst = append(dst, `\\`...)
		case '\n':
			dst = append(dst, `\n`...)
		case '\r':
			dst = append(dst, `\r`...)
		case '\t':
			dst = append(dst, `\t`...)
		case '\b':
			dst = append(dst, `\b`...)
		case '\f':
			dst = append(dst, `\f`...)
		default:
			if c < 0x20 || (ensureASCII && c == 0x7f) {
				dst = u4(dst, rune(c))
			} else {
				dst = append(dst, c)
			}
		}
	}
	return append(dst, '"')
}

// appendRequest appends the /retrieve request body exactly as Search-R1's
// trainer sends it (requests.post(json=payload): json.dumps defaults).
func appendRequest(dst []byte, queries []string, topk int) []byte {
	dst = append(dst, `{"queries": [`...)
	for i, q := range queries {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = appendPyASCIIString(dst, q)
	}
	dst = append(dst, `], "topk": `...)
	dst = strconv.AppendInt(dst, int64(topk), 10)
	return append(dst, `, "return_scores": true}`...)
}

// appendPyFloat appends f as Python's repr(float) writes it: the shortest
// digits that round-trip, positional notation for decimal exponents in
// [-4, 16) with at least one digit after the point, scientific otherwise
// with a signed exponent of at least two digits.
func appendPyFloat(dst []byte, f float64) []byte {
	if f == 0 {
		if math.Signbit(f) {
			return append(dst, "-0.0"...)
		}
		return append(dst, "0.0"...)
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // [-]d[.ddd]e±XX
	if s[0] == '-' {
		dst = append(dst, '-')
		s = s[1:]
	}
	mant, expText, _ := strings.Cut(s, "e")
	exp, _ := strconv.Atoi(expText)
	digits := strings.Replace(mant, ".", "", 1)
	if exp < -4 || exp >= 16 {
		dst = append(dst, digits[0])
		if len(digits) > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:]...)
		}
		dst = append(dst, 'e')
		if exp < 0 {
			dst = append(dst, '-')
			exp = -exp
		} else {
			dst = append(dst, '+')
		}
		if exp < 10 {
			dst = append(dst, '0')
		}
		return strconv.AppendInt(dst, int64(exp), 10)
	}
	if exp < 0 {
		dst = append(dst, "0."...)
		dst = append(dst, strings.Repeat("0", -exp-1)...)
		return append(dst, digits...)
	}
	if len(digits) <= exp+1 {
		dst = append(dst, digits...)
		dst = append(dst, strings.Repeat("0", exp+1-len(digits))...)
		return append(dst, ".0"...)
	}
	dst = append(dst, digits[:exp+1]...)
	dst = append(dst, '.')
	return append(dst, digits[exp+1:]...)
}
