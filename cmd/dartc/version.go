package main

import (
	"fmt"

	"github.com/dartc/dartc/runtime"
	"github.com/urfave/cli/v2"
)

func init() { register(versionCommand) }

var versionCommand = &cli.Command{
	Name:  "version",
	Usage: "print dartc's version and the ONNX Runtime library it finds",
	Action: func(c *cli.Context) error {
		fmt.Fprintln(c.App.Writer, "dartc", dartcVersion)
		lib, err := runtime.Init()
		if err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "onnxruntime %s (%s)\n", runtime.Version(), lib)
		return nil
	},
}

const dartcVersion = "0.1.0"
