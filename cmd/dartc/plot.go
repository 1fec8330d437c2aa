package main

import (
	"fmt"

	"github.com/dartc/dartc/grpo"
	"github.com/urfave/cli/v2"
)

func init() { register(plotCommand) }

var plotCommand = &cli.Command{
	Name:      "plot",
	Usage:     "draw the training curves of a run as PNG files",
	ArgsUsage: "RUN",
	Description: `Reads RUN/metrics.jsonl (written by dartc train) and writes one PNG per group of
curves — reward and EM, KL, clip fraction and ratio, entropy, gradient norm, learning
rate, rollout lengths and searches, wall time per phase — into RUN/plots (or --out).`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "output directory (default RUN/plots)"},
	},
	Action: func(c *cli.Context) error {
		if c.NArg() != 1 {
			return fmt.Errorf("plot: want one RUN directory argument, got %d", c.NArg())
		}
		paths, err := grpo.PlotRun(c.Args().First(), c.String("out"))
		if err != nil {
			return fmt.Errorf("plot: %w", err)
		}
		for _, p := range paths {
			fmt.Fprintln(c.App.Writer, p)
		}
		return nil
	},
}
