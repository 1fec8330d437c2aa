package main

import (
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
)

// commands is filled by each command file's init through register, so that
// adding a command touches only its own file.
var commands []*cli.Command

func register(c *cli.Command) { commands = append(commands, c) }

func newApp() *cli.App {
	sort.Slice(commands, func(i, j int) bool { return commands[i].Name < commands[j].Name })
	// Without an action, urfave/cli answers an unknown command with its
	// help command's "No help topic for …"; a group that has no action of
	// its own (search, models) gets the same unknown-command error.
	for _, c := range commands {
		if len(c.Subcommands) > 0 && c.Action == nil {
			c.Action = unknownSubcommand
		}
	}
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
		Action:   unknownCommand,
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

// unknownCommand is the app's action: help without arguments, else the
// first argument named no command.
func unknownCommand(c *cli.Context) error {
	if !c.Args().Present() {
		return cli.ShowAppHelp(c)
	}
	return fmt.Errorf("unknown command %q; the commands are %s (dartc help COMMAND describes one)",
		c.Args().First(), commandNames(c.App.Commands))
}

// unknownSubcommand is the action of a command group.
func unknownSubcommand(c *cli.Context) error {
	if !c.Args().Present() {
		return cli.ShowSubcommandHelp(c)
	}
	return fmt.Errorf("%s: unknown command %q; its commands are %s (dartc %[1]s help COMMAND describes one)",
		c.Command.Name, c.Args().First(), commandNames(c.Command.Subcommands))
}

// commandNames lists the visible commands, help left out.
func commandNames(cmds []*cli.Command) string {
	var names []string
	for _, c := range cmds {
		if !c.Hidden && c.Name != "help" {
			names = append(names, c.Name)
		}
	}
	return strings.Join(names, ", ")
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

// intFlagRange is an integer flag's smallest meaningful value; note says
// what the flag counts, or what its smallest value means.
type intFlagRange struct {
	name string
	min  int
	note string
}

// checkInts refuses integer flags below their minimum up front: the
// libraries read 0 (or any value ≤ 0) as "the default", so a value let
// through would run with another one than the user asked for.
func checkInts(c *cli.Context, cmd string, flags ...intFlagRange) error {
	for _, f := range flags {
		if v := c.Int(f.name); v < f.min {
			dash := "--"
			if len(f.name) == 1 {
				dash = "-" // as typed: leas -k
			}
			return fmt.Errorf("%s: %s%s %d: must be ≥ %d (%s)", cmd, dash, f.name, v, f.min, f.note)
		}
	}
	return nil
}

// checkTolerance refuses a negative or NaN --tolerance, which no
// difference could meet; 0 stands for the default by dtype.
func checkTolerance(cmd string, tol float64) error {
	if !(tol >= 0) {
		return fmt.Errorf("%s: --tolerance %v: must be ≥ 0 (0: the default for the graphs' dtype)", cmd, tol)
	}
	return nil
}
