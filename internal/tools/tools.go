//go:build tools

// Package tools pins modules that the project imports in later packages.
package tools

import (
	_ "github.com/dlclark/regexp2"
	_ "github.com/parquet-go/parquet-go"
	_ "github.com/schollz/progressbar/v3"
	_ "github.com/urfave/cli/v2"
	_ "github.com/yalue/onnxruntime_go"
	_ "golang.org/x/text/unicode/norm"
	_ "gonum.org/v1/plot"
	_ "google.golang.org/protobuf/proto"
	_ "gopkg.in/yaml.v3"
)
