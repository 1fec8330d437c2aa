package tokenizer

import (
	"slices"
	"strings"

	"golang.org/x/text/unicode/norm"
)

// cgj is U+034F COMBINING GRAPHEME JOINER.
const cgj = '\u034f'

// nfc is Unicode NFC as Hugging Face's normalizer computes it. Go's norm
// package also makes its output stream-safe (UAX #15): after 30 non-starters
// in a row it inserts a CGJ, and it orders and composes the marks on each
// side of it separately. Hugging Face does neither, so text with such a run
// takes the exact algorithm below; all other text takes norm.NFC.
func nfc(text string) string {
	out := norm.NFC.String(text)
	if strings.Count(out, string(cgj)) == strings.Count(text, string(cgj)) {
		return out
	}
	return nfcExact(text)
}

// nfcExact normalizes without the stream-safe limit: the canonical
// decomposition of each rune, canonical ordering of every run of
// non-starters (a stable sort by combining class), then canonical
// composition, where a pair's primary composite is what NFC makes of the
// two runes alone.
func nfcExact(text string) string {
	var rs []rune
	for _, r := range text {
		rs = append(rs, []rune(norm.NFD.String(string(r)))...)
	}
	ccc := func(r rune) uint8 { return norm.NFD.PropertiesString(string(r)).CCC() }
	for i := 0; i < len(rs); {
		if ccc(rs[i]) == 0 {
			i++
			continue
		}
		j := i
		for j < len(rs) && ccc(rs[j]) != 0 {
			j++
		}
		slices.SortStableFunc(rs[i:j], func(a, b rune) int { return int(ccc(a)) - int(ccc(b)) })
		i = j
	}
	out := make([]rune, 0, len(rs))
	starter := -1 // index in out of the last starter
	for _, c := range rs {
		cc := ccc(c)
		if starter >= 0 {
			// c is blocked from the starter by a rune between them of class
			// 0 or of a class ≥ c's.
			blocked := false
			if len(out)-1 > starter {
				last := ccc(out[len(out)-1])
				blocked = last == 0 || last >= cc
			}
			if !blocked {
				if p := []rune(norm.NFC.String(string([]rune{out[starter], c}))); len(p) == 1 {
					out[starter] = p[0]
					continue
				}
			}
		}
		if cc == 0 {
			starter = len(out)
		}
		out = append(out, c)
	}
	return string(out)
}
