package bm25

import (
	"slices"
	"testing"
)

func tokensOf(s string) []string {
	var out []string
	Tokens(s, nil, func(t []byte) { out = append(out, string(t)) })
	return out
}

func TestTokens(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"Hello, World!", []string{"hello", "world"}},
		{"\"Evan Morris\"\nEvan L. Morris (January 26, 1977 – July 9, 2015)",
			[]string{"evan", "morris", "evan", "l", "morris", "january", "26", "1977", "july", "9", "2015"}},
		{"don't stop", []string{"don't", "stop"}},
		{"rock’n’roll", []string{"rock’n’roll"}},
		{"U.S. pi=3.14 1,000,000 a,b", []string{"u.s", "pi", "3.14", "1,000,000", "a", "b"}},
		{"end. Next", []string{"end", "next"}},
		{"snake_case ÉCOLE Straße", []string{"snake_case", "école", "straße"}},
		{"ΣΟΦΙΑ", []string{"σοφια"}},
		{"東京タワー is tall", []string{"東", "京", "タワー", "is", "tall"}},
		{"x'", []string{"x"}},
		{"'quoted'", []string{"quoted"}},
		{"café", []string{"café"}}, // e + combining acute stays one token
	}
	for _, c := range cases {
		if got := tokensOf(c.in); !slices.Equal(got, c.want) {
			t.Errorf("Tokens(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
