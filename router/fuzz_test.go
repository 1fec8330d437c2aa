package router

import (
	"slices"
	"testing"
)

// fuzzVocab holds the pieces tags are cut into by real BPE vocabularies,
// tokens that straddle a tag's edge, and plain text.
var fuzzVocab = literalVocab{"<", ">", "/", "search", "<search>", "</search>", "</", "><", " <search", "> ",
	">\n\n", "sea", "rch", "rch>", "<s", "x", " q", "\n", "<<", "</search><search>"}

// FuzzRoles checks Router against Roles on arbitrary sequences: each input
// byte picks a token (low bits) and whether it was generated (high bit).
func FuzzRoles(f *testing.F) {
	f.Add([]byte{4, 16, 5, 15})
	f.Add([]byte{0, 3, 1, 16, 6, 3, 1})
	f.Add([]byte{8, 1, 16, 0x80 | 15, 16, 9, 16, 5})
	f.Fuzz(func(t *testing.T, in []byte) {
		var s sequence
		for _, b := range in {
			s.add([]int{int(b&0x7f) % len(fuzzVocab)}, b&0x80 == 0)
		}
		inc := incremental(fuzzVocab, s)
		if batch := Roles(fuzzVocab, s.ids, s.generated, SearchR1); !slices.Equal(inc, batch) {
			t.Fatalf("ids %v generated %v: incremental %v, batch %v", s.ids, s.generated, inc, batch)
		}
		checkRoles(t, fuzzVocab, s, "fuzz")
	})
}
