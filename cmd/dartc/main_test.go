package main

import (
	"strings"
	"testing"
)

// TestUnknownCommand: an unknown command or subcommand exits 1 with an
// error that names it and lists the commands (urfave/cli's default was
// "No help topic for …"); with no command, help is shown, exit 0.
func TestUnknownCommand(t *testing.T) {
	for _, c := range []struct {
		args []string
		says []string
	}{
		{[]string{"nonexistent"}, []string{`unknown command "nonexistent"`, "compile, eval, ", "train, version"}},
		{[]string{"search", "bogus"}, []string{`search: unknown command "bogus"`, "index, query, serve"}},
		{[]string{"models", "bogus"}, []string{`models: unknown command "bogus"`, "presets, synth"}},
	} {
		msg, code := dartcProcess(t, c.args...)
		if code != 1 {
			t.Errorf("dartc %s: exit %d, want 1; stderr %q", strings.Join(c.args, " "), code, msg)
		}
		for _, want := range c.says {
			if !strings.Contains(msg, want) {
				t.Errorf("dartc %s: stderr %q lacks %q", strings.Join(c.args, " "), msg, want)
			}
		}
		if strings.Contains(msg, "No help topic") || strings.Contains(msg, ", help") {
			t.Errorf("dartc %s: stderr %q", strings.Join(c.args, " "), msg)
		}
	}
	for _, args := range [][]string{nil, {"search"}, {"models"}} {
		out, err := runDartc(t, "", args...)
		if err != nil || !strings.Contains(out, "COMMANDS:") {
			t.Errorf("dartc %s: %v, want help:\n%s", strings.Join(args, " "), err, out)
		}
	}
}
