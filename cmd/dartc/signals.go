package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/urfave/cli/v2"
)

// graceful lists the commands that stop cleanly on SIGINT or SIGTERM by
// themselves (they watch a signal context: train checkpoints, search
// index removes its partial file, search serve drains its requests).
// Every other command exits at once.
var graceful = map[string]bool{"train": true, "search index": true, "search serve": true}

// running is the path of the command being run ("search index").
var running atomic.Value

// trackCommands makes every command record its path in running when its
// action starts. main calls it once per process.
func trackCommands(cmds []*cli.Command, parent string) {
	for _, c := range cmds {
		path := strings.TrimSpace(parent + " " + c.Name)
		if act := c.Action; act != nil {
			c.Action = func(ctx *cli.Context) error {
				running.Store(path)
				return act(ctx)
			}
		}
		trackCommands(c.Subcommands, path)
	}
}

// cleanups are run before a signal ends a command that is not graceful:
// they remove what the command had half written.
var cleanups struct {
	sync.Mutex
	next int
	fns  map[int]func()
}

// atInterrupt registers fn to run if a signal ends the command at once;
// the returned function unregisters it.
func atInterrupt(fn func()) (forget func()) {
	cleanups.Lock()
	defer cleanups.Unlock()
	if cleanups.fns == nil {
		cleanups.fns = map[int]func(){}
	}
	id := cleanups.next
	cleanups.next++
	cleanups.fns[id] = fn
	return func() {
		cleanups.Lock()
		delete(cleanups.fns, id)
		cleanups.Unlock()
	}
}

// runCleanups runs the registered cleanups; the lock is kept so that none
// is forgotten while it runs.
func runCleanups() {
	cleanups.Lock()
	defer cleanups.Unlock()
	for _, fn := range cleanups.fns {
		fn()
	}
}

// signalExit is the conventional exit status of a process stopped by s:
// 128 + its number (130 for SIGINT, 143 for SIGTERM).
func signalExit(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return 128 + int(n)
	}
	return 1
}

func signalName(s os.Signal) string {
	if s == os.Interrupt {
		return "SIGINT"
	}
	if s == syscall.SIGTERM {
		return "SIGTERM"
	}
	return s.String()
}

// watchSignals handles SIGINT and SIGTERM for the whole process: a command
// that does not stop gracefully exits at once with status 128 + signal and
// one line on stderr; a graceful one is left to finish (a second signal
// stops it at once). Call the returned function when the command has
// returned: it reports the signal received, if any.
func watchSignals() (finished func() (os.Signal, bool)) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	verdict := make(chan os.Signal, 1)
	go func() {
		var got os.Signal
		for {
			select {
			case s := <-sigs:
				if got != nil {
					fmt.Fprintf(os.Stderr, "dartc: interrupted again (%s): stopping without cleaning up\n", signalName(s))
					os.Exit(signalExit(s))
				}
				got = s
				if cmd, _ := running.Load().(string); !graceful[cmd] {
					runCleanups()
					fmt.Fprintf(os.Stderr, "dartc: interrupted (%s)\n", signalName(s))
					os.Exit(signalExit(s))
				}
			case <-done:
				// A graceful command may have seen the signal on its own
				// channel and returned before this loop took it from sigs:
				// the signal package fills every channel in one pass, so
				// it is waiting there now.
				if got == nil {
					select {
					case s := <-sigs:
						got = s
					default:
					}
				}
				verdict <- got
				return
			}
		}
	}()
	return func() (os.Signal, bool) {
		close(done)
		s := <-verdict
		return s, s != nil
	}
}

// interruptedLine is the one line main prints when a graceful command
// returns after a signal: the signal, and the command's error unless it is
// only the cancellation itself.
func interruptedLine(s os.Signal, err error) string {
	line := "dartc: interrupted (" + signalName(s) + ")"
	if err != nil && !errors.Is(err, context.Canceled) {
		line += ": " + strings.ReplaceAll(err.Error(), "\n", " ")
	}
	return line
}
