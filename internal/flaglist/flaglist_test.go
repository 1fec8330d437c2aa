package flaglist

import (
	"slices"
	"testing"
)

func TestSplit(t *testing.T) {
	for in, want := range map[string][]string{
		"":                     nil,
		"decode":               {"decode"},
		" decode , train ,,":   {"decode", "train"},
		"q,k,v,o,gate,up,down": {"q", "k", "v", "o", "gate", "up", "down"},
	} {
		if got := Split(in); !slices.Equal(got, want) {
			t.Errorf("Split(%q) = %q, want %q", in, got, want)
		}
	}
}
