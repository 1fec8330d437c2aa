package main

import "github.com/urfave/cli/v2"

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

var globalFlags = []cli.Flag{logLevelFlag, logJSONFlag}
