package flaglist

import "strings"

// Split returns the non-empty, trimmed fields of a comma-separated list.
func Split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
