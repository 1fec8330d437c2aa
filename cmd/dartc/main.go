package main

import (
	"fmt"
	"log/slog"
	"os"
	"sort"

	"github.com/urfave/cli/v2"
)

// commands is filled by each command file's init through register, so that
// adding a command touches only its own file.
var commands []*cli.Command

func register(c *cli.Command) { commands = append(commands, c) }

func newApp() *cli.App {
	sort.Slice(commands, func(i, j int) bool { return commands[i].Name < commands[j].Name })
	return &cli.App{
		Name:  "dartc",
		Usage: "compile and train dual-LoRA (reasoning / tool-use) agents on ONNX Runtime",
		Description: `dartc turns an exported Qwen2/Qwen2.5 ONNX graph into graphs that route every token
to a reasoning or a tool-use LoRA adapter (DART, arXiv 2602.00994), differentiates them
in standard ONNX ops, and trains them with GRPO against a search engine.`,
		Flags: globalFlags,
		Before: func(c *cli.Context) error {
			if err := setupLogging(c); err != nil {
				return err
			}
			return setupORT(c)
		},
		Commands: commands,
		// Errors return from Run; main prints them and exits non-zero.
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

func main() {
	app := newApp()
	trackCommands(app.Commands, "")
	finished := watchSignals()
	err := app.Run(interspersed(app, os.Args))
	if s, ok := finished(); ok {
		fmt.Fprintln(os.Stderr, interruptedLine(s, err))
		os.Exit(signalExit(s))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "dartc: %v\n", err)
		os.Exit(1)
	}
}

func setupLogging(c *cli.Context) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.String(logLevelFlag.Name))); err != nil {
		return fmt.Errorf("--%s: %w", logLevelFlag.Name, err)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(os.Stderr, opts)
	if c.Bool(logJSONFlag.Name) {
		h = slog.NewJSONHandler(os.Stderr, opts)
	}
	slog.SetDefault(slog.New(h))
	return nil
}
