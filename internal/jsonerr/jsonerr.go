package jsonerr

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// Describe returns err reworded when it is a *json.UnmarshalTypeError,
// and err itself otherwise.
func Describe(err error) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return err
	}
	field := strings.TrimPrefix(te.Field, ".")
	what := fmt.Sprintf("is a %s, want %s", jsonWord(te.Value), kind(te.Type))
	if field == "" {
		return fmt.Errorf("the value %s", what)
	}
	return fmt.Errorf("field %q %s", field, what)
}

// jsonWord turns json's description of a JSON value into plain words.
func jsonWord(v string) string {
	switch {
	case v == "array":
		return "list"
	case strings.HasPrefix(v, "number"):
		return "number"
	case v == "bool":
		return "true/false value"
	}
	return v // string, object
}

// kind names what a Go type holds in JSON's terms.
func kind(t reflect.Type) string {
	if t == nil {
		return "another kind of value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "another kind of value"
}

// yamlTypeLine matches one of yaml.v3's type errors: "line 3: cannot
// unmarshal !!str `abc` into int".
var yamlTypeLine = regexp.MustCompile("^(line \\d+): cannot unmarshal !!(\\w+)( `[^`]*`)? into (\\S+)$")

// DescribeYAML returns err reworded when it is a *yaml.TypeError (one line
// per field of the wrong kind, in YAML's words), and err itself otherwise.
func DescribeYAML(err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return err
	}
	words := map[string]string{"str": "text", "int": "a whole number", "float": "a number", "bool": "true or false",
		"seq": "a list", "map": "a mapping", "null": "empty", "timestamp": "a date"}
	lines := make([]string, len(te.Errors))
	for i, e := range te.Errors {
		m := yamlTypeLine.FindStringSubmatch(e)
		if m == nil {
			lines[i] = e
			continue
		}
		got, ok := words[m[2]]
		if !ok {
			got = m[2]
		}
		value := "the value"
		if m[3] != "" {
			value = strings.TrimSpace(m[3])
		}
		lines[i] = fmt.Sprintf("%s: %s is %s, want %s", m[1], value, got, goKind(m[4]))
	}
	return errors.New(strings.Join(lines, "; "))
}

// goKind names a Go type, as yaml spells it, in plain words.
func goKind(t string) string {
	switch {
	case t == "string":
		return "text"
	case t == "bool":
		return "true or false"
	case strings.HasPrefix(t, "int") || strings.HasPrefix(t, "uint"):
		return "a whole number"
	case strings.HasPrefix(t, "float"):
		return "a number"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	}
	return "a mapping of settings"
}
