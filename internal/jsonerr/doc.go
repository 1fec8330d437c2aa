// Package jsonerr rewords encoding/json decoding errors for users: a value
// of the wrong kind is named by its field and by JSON's words (string,
// number, list, object) rather than by Go struct and type names
// ("cannot unmarshal number into Go struct field flashRAGRow.contents of
// type string" becomes `field "contents" is a number, want a string`), and
// yaml.v3's type errors likewise ("cannot unmarshal !!str `abc` into int"
// becomes "`abc` is text, want a whole number").
package jsonerr
