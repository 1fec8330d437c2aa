package tokenizer

import (
	"testing"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// newRegexSplitter returns a splitter that runs Qwen2SplitPattern through
// regexp2, the reference for the hand-written one. regexp2 reports rune
// offsets, converted here to byte offsets.
func newRegexSplitter(tb testing.TB) func(string) []string {
	re, err := regexp2.Compile(Qwen2SplitPattern, regexp2.None)
	if err != nil {
		tb.Fatal(err)
	}
	return func(s string) []string {
		runeToByte := make([]int, 0, len(s)+1)
		for i := range s {
			runeToByte = append(runeToByte, i)
		}
		runeToByte = append(runeToByte, len(s))
		var out []string
		prevEnd := 0
		m, err := re.FindStringMatch(s)
		for ; err == nil && m != nil; m, err = re.FindNextMatch(m) {
			start, end := runeToByte[m.Index], runeToByte[m.Index+m.Length]
			if start > prevEnd {
				out = append(out, s[prevEnd:start]) // unmatched gap (never expected)
			}
			out = append(out, s[start:end])
			prevEnd = end
		}
		if err != nil {
			tb.Fatal(err)
		}
		if prevEnd < len(s) {
			out = append(out, s[prevEnd:])
		}
		return out
	}
}

func validUTF8(s string) bool { return utf8.ValidString(s) }
