package outpath

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOwn: a resuming command writes into a missing or empty directory or
// one it recognises; anything else (a file, another folder) is refused with
// ErrNotOwn, saying why.
func TestOwn(t *testing.T) {
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }
	os.Mkdir(p("empty"), 0o755)
	os.Mkdir(p("mine"), 0o755)
	os.WriteFile(p("mine/marker"), nil, 0o644)
	os.Mkdir(p("theirs"), 0o755)
	os.WriteFile(p("theirs/notes.txt"), nil, 0o644)
	os.WriteFile(p("file"), nil, 0o644)
	recognise := func(_ string, names []string) error {
		if len(names) == 1 && names[0] == "marker" {
			return nil
		}
		return errors.New("it has no marker")
	}
	for name, want := range map[string]struct {
		exists bool
		err    string
	}{
		"missing": {false, ""}, "empty": {true, ""}, "mine": {true, ""},
		"theirs": {true, "it has no marker"}, "file": {true, "not a directory"},
	} {
		exists, err := Own(p(name), recognise)
		if exists != want.exists {
			t.Errorf("%s: exists = %v", name, exists)
		}
		switch {
		case want.err == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case want.err != "" && (!errors.Is(err, ErrNotOwn) || !strings.Contains(err.Error(), want.err)):
			t.Errorf("%s: err = %v, want ErrNotOwn saying %q", name, err, want.err)
		}
	}
}
