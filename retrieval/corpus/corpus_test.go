package corpus

import (
	"errors"
	"io"
	"strings"
	"testing"
)

func readAll(t *testing.T, text string, f Format) ([]Row, error) {
	t.Helper()
	r, err := NewReader(strings.NewReader(text), f)
	if err != nil {
		t.Fatal(err)
	}
	var rows []Row
	for {
		row, err := r.Next()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return rows, err
		}
		rows = append(rows, row)
	}
}

func TestFlashRAG(t *testing.T) {
	rows, err := readAll(t, "{\"id\": \"7\", \"contents\": \"\\\"T\\\"\\nbody\"}\n\n{\"id\": 12, \"contents\": \"x\"}", FlashRAG)
	if err != nil {
		t.Fatal(err)
	}
	want := []Row{{ID: "7", Contents: "\"T\"\nbody", Line: 1}, {ID: "12", Contents: "x", Line: 3}}
	if len(rows) != len(want) || rows[0] != want[0] || rows[1] != want[1] {
		t.Errorf("rows = %+v, want %+v", rows, want)
	}
}

func TestTitleText(t *testing.T) {
	rows, err := readAll(t, "{\"title\": \"A\", \"text\": \"a b\"}\n{\"title\": \"B\", \"text\": \"c\"}\n", TitleText)
	if err != nil {
		t.Fatal(err)
	}
	want := []Row{{ID: "0", Contents: "\"A\"\na b", Line: 1}, {ID: "1", Contents: "\"B\"\nc", Line: 2}}
	if len(rows) != 2 || rows[0] != want[0] || rows[1] != want[1] {
		t.Errorf("rows = %+v, want %+v", rows, want)
	}
}

func TestBadRows(t *testing.T) {
	cases := []struct {
		name, text string
		format     Format
		wantErr    string
	}{
		{"not json", "{\"id\": \"1\", \"contents\": \"a\"}\n{oops\n", FlashRAG, "line 2"},
		{"no contents", "{\"id\": \"1\"}\n", FlashRAG, "missing \"contents\""},
		{"no id", "{\"contents\": \"a\"}\n", FlashRAG, "missing \"id\""},
		{"object id", "{\"id\": {}, \"contents\": \"a\"}\n", FlashRAG, "string or a number"},
		{"title-text given flashrag", "{\"title\": \"A\", \"text\": \"a\"}\n", FlashRAG, "--format title-text"},
		{"flashrag given title-text", "{\"id\": \"1\", \"contents\": \"a\"}\n", TitleText, "--format flashrag"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := readAll(t, c.text, c.format)
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("err = %v, want one containing %q", err, c.wantErr)
			}
		})
	}
	if _, err := ParseFormat("csv"); err == nil {
		t.Error("ParseFormat(csv) succeeded")
	}
}

// TestBOMAccepted: a corpus file starting with a UTF-8 byte order mark
// reads as the same rows.
func TestBOMAccepted(t *testing.T) {
	body := `{"id": "a", "contents": "\"T\"\nbody"}` + "\n" + `{"id": "b", "contents": "\"U\"\nmore"}` + "\n"
	read := func(s string) []Row {
		r, err := NewReader(strings.NewReader(s), FlashRAG)
		if err != nil {
			t.Fatal(err)
		}
		var rows []Row
		for {
			row, err := r.Next()
			if err == io.EOF {
				return rows
			}
			if err != nil {
				t.Fatalf("%q: %v", s[:8], err)
			}
			rows = append(rows, row)
		}
	}
	want, got := read(body), read("\xef\xbb\xbf"+body)
	if len(got) != 2 || got[0].ID != want[0].ID || got[0].Contents != want[0].Contents || got[1] != want[1] {
		t.Fatalf("with a BOM %+v, without %+v", got, want)
	}
}
