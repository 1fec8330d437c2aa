package main

import (
	"io"
	"os"

	"golang.org/x/term"
)

// progressWriter is where progress bars go: stderr when it is a terminal,
// nowhere otherwise (a log file or a pipe would fill with redrawn bars).
func progressWriter() io.Writer {
	if isTerminal(os.Stderr) {
		return os.Stderr
	}
	return nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
