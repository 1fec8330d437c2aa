//go:build tools

// Package tools pins modules that the project imports in later packages.
package tools
import (
 _ "github.com/yalue/onnxruntime_go"
 _ "github.com/urfave/cli/v2"
 _ "google.golang.org/protobuf/proto"
 _ "github.com/dlclark/regexp2"
 _ "golang.org/x/text/unicode/norm"
 _ "github.com/schollz/progressbar/v3"
 _ "gonum.org/v1/plot"
 _ "github.com/parquet-go/parquet-go"
 _ "gopkg.in/yaml.v3"
)

