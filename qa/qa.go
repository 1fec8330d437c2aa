package qa

import (
	"strings"
	"unicode"
)

// Normalize returns the SQuAD normal form of s: lower case, no ASCII
// punctuation, no articles, single spaces.
func Normalize(s string) string {
	s = lower(s)
	s = strings.Map(func(r rune) rune {
		if isASCIIPunct(r) {
			return -1
		}
		return r
	}, s)
	s = removeArticles(s)
	return strings.Join(fields(s), " ")
}

// lower is Python's str.lower for the cases where Go's per-rune mapping
// differs: İ becomes "i̇" (two runes) and a capital sigma at the end of a
// word becomes the final form ς.
func lower(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case r == 'İ':
			b.WriteString("i\u0307")
		case r == 'Σ' && finalSigma(rs, i):
			b.WriteRune('ς')
		default:
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}

// finalSigma reports whether the sigma at i ends a word: preceded by a
// cased letter and not followed by one (case-ignorable runes skipped).
func finalSigma(rs []rune, i int) bool {
	before := false
	for j := i - 1; j >= 0; j-- {
		if caseIgnorable(rs[j]) {
			continue
		}
		before = isCased(rs[j])
		break
	}
	if !before {
		return false
	}
	for j := i + 1; j < len(rs); j++ {
		if caseIgnorable(rs[j]) {
			continue
		}
		return !isCased(rs[j])
	}
	return true
}

func isCased(r rune) bool {
	return unicode.IsUpper(r) || unicode.IsLower(r) || unicode.IsTitle(r)
}

func caseIgnorable(r rune) bool {
	return unicode.In(r, unicode.Mn, unicode.Me, unicode.Cf, unicode.Lm, unicode.Sk) || r == '\'' || r == '.' || r == ':' || r == '\u00b7' || r == '\u2019'
}

// isASCIIPunct is membership in Python's string.punctuation.
func isASCIIPunct(r rune) bool {
	return r < 0x80 && strings.ContainsRune("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", r)
}

// isWordRune is a \w character of Python 3's re on str patterns.
func isWordRune(r rune) bool {
	return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.In(r, unicode.Nd, unicode.Nl, unicode.No)
}

// removeArticles replaces each whole word a, an or the by a space, as
// re.sub(r"\b(a|an|the)\b", " ", s) does.
func removeArticles(s string) string {
	rs := []rune(s)
	var b strings.Builder
	for i := 0; i < len(rs); {
		if i == 0 || !isWordRune(rs[i-1]) {
			if n := articleAt(rs, i); n > 0 {
				b.WriteByte(' ')
				i += n
				continue
			}
		}
		b.WriteRune(rs[i])
		i++
	}
	return b.String()
}

// articleAt returns the length of the article that starts at i and ends at
// a word boundary, or 0.
func articleAt(rs []rune, i int) int {
	for _, a := range []string{"the", "an", "a"} {
		n := len(a)
		if i+n > len(rs) || string(rs[i:i+n]) != a {
			continue
		}
		if i+n == len(rs) || !isWordRune(rs[i+n]) {
			return n
		}
	}
	return 0
}

// fields splits on Python's white space (str.split with no argument), which
// adds the separators U+001C..U+001F to Go's unicode.IsSpace.
func fields(s string) []string {
	return strings.FieldsFunc(s, isPySpace)
}

func isPySpace(r rune) bool { return unicode.IsSpace(r) || r >= 0x1c && r <= 0x1f }

// ExactMatch reports whether the normalized prediction equals any
// normalized gold answer.
func ExactMatch(pred string, golds []string) bool {
	p := Normalize(pred)
	for _, g := range golds {
		if Normalize(g) == p {
			return true
		}
	}
	return false
}

// SubstringMatch reports whether any normalized gold answer occurs in the
// normalized prediction (Search-R1's subem_check).
func SubstringMatch(pred string, golds []string) bool {
	p := Normalize(pred)
	for _, g := range golds {
		if strings.Contains(p, Normalize(g)) {
			return true
		}
	}
	return false
}

// F1 returns the SQuAD token F1 of the prediction against the best gold.
func F1(pred string, golds []string) float64 {
	p := fields(Normalize(pred))
	best := 0.0
	for _, g := range golds {
		if f := tokenF1(p, fields(Normalize(g))); f > best {
			best = f
		}
	}
	return best
}

func tokenF1(pred, gold []string) float64 {
	counts := map[string]int{}
	for _, t := range gold {
		counts[t]++
	}
	same := 0
	for _, t := range pred {
		if counts[t] > 0 {
			counts[t]--
			same++
		}
	}
	if same == 0 {
		return 0
	}
	precision := float64(same) / float64(len(pred))
	recall := float64(same) / float64(len(gold))
	return 2 * precision * recall / (precision + recall)
}

const (
	openTag  = "<answer>"
	closeTag = "</answer>"
)

// ExtractAnswer returns the content of the last <answer>…</answer> in
// response, trimmed of white space, and whether there was one.
func ExtractAnswer(response string) (string, bool) {
	answer, found := "", false
	for rest := response; ; {
		i := strings.Index(rest, openTag)
		if i < 0 {
			break
		}
		rest = rest[i+len(openTag):]
		j := strings.Index(rest, closeTag)
		if j < 0 {
			break
		}
		answer, found = strings.TrimFunc(rest[:j], isPySpace), true
		rest = rest[j+len(closeTag):]
	}
	return answer, found
}

// Score holds the three metrics of one prediction, each in [0, 1].
type Score struct {
	EM    float64 `json:"em"`
	F1    float64 `json:"f1"`
	SubEM float64 `json:"subem"`
}

// ScorePrediction scores an already extracted answer.
func ScorePrediction(pred string, golds []string) Score {
	return Score{EM: b2f(ExactMatch(pred, golds)), F1: F1(pred, golds), SubEM: b2f(SubstringMatch(pred, golds))}
}

// ScoreResponse extracts the answer of a full response and scores it; a
// response with no answer scores 0.
func ScoreResponse(response string, golds []string) Score {
	pred, ok := ExtractAnswer(response)
	if !ok {
		return Score{}
	}
	return ScorePrediction(pred, golds)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
