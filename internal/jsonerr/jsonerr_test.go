package jsonerr

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestDescribe(t *testing.T) {
	var row struct {
		ID       string   `json:"id"`
		Steps    int      `json:"steps"`
		Golden   []string `json:"golden_answers"`
		Contents *string  `json:"contents"`
	}
	for in, want := range map[string]string{
		`{"id": 3}`:                  `field "id" is a number, want a string`,
		`{"steps": "x"}`:             `field "steps" is a string, want a whole number`,
		`{"golden_answers": "x"}`:    `field "golden_answers" is a string, want a list`,
		`{"contents": [1]}`:          `field "contents" is a list, want a string`,
		`{"golden_answers": [true]}`: `field "golden_answers" is a true/false value, want a string`,
	} {
		err := Describe(json.Unmarshal([]byte(in), &row))
		if err == nil || err.Error() != want {
			t.Errorf("%s: %v, want %q", in, err, want)
		}
		if err != nil && (strings.Contains(err.Error(), "Go ") || strings.Contains(err.Error(), "struct")) {
			t.Errorf("%s: %q names Go types", in, err)
		}
	}
	plain := errors.New("x")
	if Describe(plain) != plain {
		t.Error("other errors must pass through")
	}
}

func TestDescribeYAML(t *testing.T) {
	var cfg struct {
		Steps  int      `yaml:"steps"`
		LR     float64  `yaml:"lr"`
		Name   string   `yaml:"name"`
		Group  int      `yaml:"group"`
		Quiet  bool     `yaml:"quiet"`
		Splits []string `yaml:"splits"`
	}
	err := DescribeYAML(yaml.Unmarshal([]byte("steps: abc\nlr: [1]\nquiet: maybe\n"), &cfg))
	want := "line 1: `abc` is text, want a whole number; line 2: the value is a list, want a number; " +
		"line 3: `maybe` is text, want true or false"
	if err == nil || err.Error() != want {
		t.Fatalf("got  %v\nwant %s", err, want)
	}
}
