package main

import (
	"fmt"
	"os"

	"github.com/dartc/dartc/runtime"
	"github.com/urfave/cli/v2"
)

// Flags shared by several commands. Each may also be set through the
// environment variable DARTC_<NAME>.
var (
	logLevelFlag = &cli.StringFlag{
		Name: "log-level", Value: "info", Usage: "log level: debug, info, warn or error",
		EnvVars: []string{"DARTC_LOG_LEVEL"}, Category: "logging",
	}
	logJSONFlag = &cli.BoolFlag{
		Name: "log-json", Usage: "write structured logs as JSON lines on stderr",
		EnvVars: []string{"DARTC_LOG_JSON"}, Category: "logging",
	}
	deviceFlag = &cli.StringFlag{
		Name: "device", Value: "cpu", Usage: "execution provider: cpu or cuda",
		EnvVars: []string{"DARTC_DEVICE"}, Category: "runtime",
	}
)

var globalFlags = []cli.Flag{logLevelFlag, logJSONFlag, ortLogFlag, ortProfileFlag, strictPlacementFlag}

// ONNX Runtime diagnostics, for every session of the command; each sets its
// environment variable (runtime.EnvORTLog, EnvORTProfile, EnvORTStrict),
// which the sessions read.
var (
	ortLogFlag = &cli.StringFlag{Name: "ort-log", EnvVars: []string{runtime.EnvORTLog},
		Usage: "ONNX Runtime's session log level: verbose, info, warning, error or fatal (verbose logs where each node was placed)"}
	ortProfileFlag = &cli.StringFlag{Name: "ort-profile", EnvVars: []string{runtime.EnvORTProfile},
		Usage: "write ONNX Runtime's per-node profile (Chrome-trace JSON, one file per session) with this path prefix"}
	strictPlacementFlag = &cli.BoolFlag{Name: "strict-placement", EnvVars: []string{runtime.EnvORTStrict},
		Usage: "with --device cuda, fail instead of running nodes without a CUDA kernel on the CPU (session.disable_cpu_ep_fallback)"}
)

// setupORT passes the diagnostics flags to the sessions.
func setupORT(c *cli.Context) error {
	if err := runtime.ParseLogLevel(c.String(ortLogFlag.Name)); err != nil {
		return fmt.Errorf("--%s: %w", ortLogFlag.Name, err)
	}
	set := map[string]string{runtime.EnvORTLog: c.String(ortLogFlag.Name), runtime.EnvORTProfile: c.String(ortProfileFlag.Name)}
	if c.Bool(strictPlacementFlag.Name) {
		set[runtime.EnvORTStrict] = "1"
	}
	for k, v := range set {
		if v == "" {
			continue
		}
		if err := os.Setenv(k, v); err != nil {
			return fmt.Errorf("set %s: %w", k, err)
		}
	}
	return nil
}
