package retrieval

import "testing"

// The expected strings are what Search-R1's _passages2string produces for the
// same rows (Python: title = c.split("\n")[0]; text = "\n".join(c.split("\n")[1:])).
func TestFormatObservation(t *testing.T) {
	cases := []struct {
		name     string
		passages []Passage
		want     string
	}{
		{"none", nil, ""},
		{"quoted title", []Passage{{Contents: "\"Evan Morris\"\nEvan L. Morris was a lobbyist."}},
			"Doc 1(Title: \"Evan Morris\") Evan L. Morris was a lobbyist.\n"},
		{"no newline", []Passage{{Contents: "only a title"}}, "Doc 1(Title: only a title) \n"},
		{"two newlines keep the second", []Passage{{Contents: "\"T\"\nline one\nline two"}},
			"Doc 1(Title: \"T\") line one\nline two\n"},
		{"numbering", []Passage{{Contents: "\"A\"\na"}, {Contents: "\"B\"\nb"}, {Contents: "\"C\"\nc"}},
			"Doc 1(Title: \"A\") a\nDoc 2(Title: \"B\") b\nDoc 3(Title: \"C\") c\n"},
		{"empty contents", []Passage{{Contents: ""}}, "Doc 1(Title: ) \n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := FormatObservation(c.passages); got != c.want {
				t.Errorf("FormatObservation = %q, want %q", got, c.want)
			}
		})
	}
}
