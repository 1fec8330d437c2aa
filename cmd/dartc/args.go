package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// interspersed moves each command's flags before its positional arguments,
// so that `dartc compile model.onnx -o out` works as well as
// `dartc compile -o out model.onnx` (urfave/cli stops parsing flags at the
// first positional argument). A "--" ends the flags as usual.
func interspersed(app *cli.App, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	flags := app.Flags
	cmds := app.Commands
	i := 1
	// Global flags, then the command path.
	for i < len(args) {
		var cmd *cli.Command
		for ; i < len(args); i++ {
			a := args[i]
			if strings.HasPrefix(a, "-") && a != "-" {
				out = append(out, a)
				if takesValue(flags, a) && i+1 < len(args) {
					i++
					out = append(out, args[i])
				}
				continue
			}
			for _, c := range cmds {
				if c.HasName(a) {
					cmd = c
				}
			}
			break
		}
		if cmd == nil || i >= len(args) {
			break
		}
		out = append(out, args[i])
		i++
		if hasSubcommands(cmd) {
			flags, cmds = cmd.Flags, cmd.Subcommands
			continue
		}
		// A leaf command: its flags first, then its positionals.
		var pos []string
		for ; i < len(args); i++ {
			a := args[i]
			if a == "--" {
				pos = append(pos, args[i+1:]...)
				break
			}
			if strings.HasPrefix(a, "-") && a != "-" {
				out = append(out, a)
				if takesValue(cmd.Flags, a) && i+1 < len(args) {
					i++
					out = append(out, args[i])
				}
				continue
			}
			pos = append(pos, a)
		}
		if len(pos) > 0 {
			out = append(out, "--")
			out = append(out, pos...)
		}
		return out
	}
	return append(out, args[i:]...)
}

// takesValue reports whether the flag written as arg consumes the next
// argument.
func takesValue(flags []cli.Flag, arg string) bool {
	if strings.Contains(arg, "=") {
		return false
	}
	name := strings.TrimLeft(arg, "-")
	for _, f := range flags {
		for _, n := range f.Names() {
			if n == name {
				switch f.(type) {
				case *cli.BoolFlag:
					return false
				}
				return true
			}
		}
	}
	return false
}

// hasSubcommands reports whether c is a command group. urfave/cli adds a
// "help" subcommand to every command it has run, which does not count.
func hasSubcommands(c *cli.Command) bool {
	for _, sub := range c.Subcommands {
		if sub.Name != "help" {
			return true
		}
	}
	return false
}
