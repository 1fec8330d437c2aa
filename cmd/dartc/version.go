package main

import (
	"fmt"
	"strings"

	"github.com/dartc/dartc/runtime"
	"github.com/urfave/cli/v2"
)

func init() { register(versionCommand) }

var versionCommand = &cli.Command{
	Name:  "version",
	Usage: "print dartc's version, the ONNX Runtime library it finds, its execution providers and whether CUDA can run",
	Description: "Lists the execution providers the loaded ONNX Runtime library was built with (ONNX Runtime's\n" +
		"GetAvailableProviders) and says whether each device can run here. For CUDA it looks for the\n" +
		"provider library (`make ort-gpu` installs ONNX Runtime's CUDA 13 build in .cache/ort-gpu), the\n" +
		"CUDA 13 libraries, cuDNN 9 and the NVIDIA driver, and names what is missing. With --device cuda\n" +
		"it loads the CUDA build and creates a CUDA session, which is the final word.",
	Flags: []cli.Flag{&cli.StringFlag{Name: "device", Value: "cpu", Usage: "the device whose ONNX Runtime build to load: cpu or cuda"}},
	Action: func(c *cli.Context) error {
		w := c.App.Writer
		fmt.Fprintln(w, "dartc", dartcVersion)
		dev := c.String("device")
		if dev != runtime.DeviceCPU && dev != runtime.DeviceCUDA {
			return fmt.Errorf("version: --device %q: want cpu or cuda", dev)
		}
		lib, err := runtime.InitFor(dev)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "onnxruntime %s (%s)\n", runtime.Version(), lib)
		ps, err := runtime.Providers()
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "providers built in: %s\n", strings.Join(ps, ", "))
		fmt.Fprintln(w, "cpu: usable")
		r := runtime.CheckCUDA(true)
		fmt.Fprintln(w, "cuda:", r.Status())
		for _, line := range r.Fixes() {
			fmt.Fprintln(w, "  "+line)
		}
		return nil
	},
}

const dartcVersion = "0.1.0"
