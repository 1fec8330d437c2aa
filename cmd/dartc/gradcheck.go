package main

import (
	"fmt"

	"github.com/dartc/dartc/gradcheck"
	"github.com/urfave/cli/v2"
)

func init() { register(gradcheckCommand) }

var gradcheckCommand = &cli.Command{
	Name:      "gradcheck",
	Usage:     "check a compiled model's train.onnx gradients against central differences",
	ArgsUsage: "DIR",
	Description: `Draws random inputs (left-padded sequences, mixed roles, positive token weights,
advantages of both signs) and random non-zero adapters, runs train.onnx once for the
gradients, then for every adapter tensor compares ⟨∇L, u⟩ along random unit directions u
with the central difference (L(θ+hu) − L(θ−hu)) / 2h of the loss, run forward only.
Prints the worst relative error per adapter tensor; exits non-zero above the tolerance
(default 1e-6 for float64 graphs, 2e-2 for float32). The check is precise in float64:
compile the float32 export with --precision fp64 (or export it in float64) for it.`,
	Flags: []cli.Flag{
		&cli.IntFlag{Name: "samples", Value: 3, Usage: "random directions per adapter tensor"},
		&cli.Uint64Flag{Name: "seed", Value: 0, Usage: "seed of the inputs, adapters and directions"},
		&cli.Float64Flag{Name: "tolerance", Usage: "max relative error (default: by dtype)"},
		&cli.IntFlag{Name: "top", Value: 10, Usage: "print the N worst tensors (0: all)"},
		deviceFlag,
	},
	Action: func(c *cli.Context) error {
		if c.NArg() != 1 {
			return fmt.Errorf("gradcheck: want one compiled DIR argument, got %d", c.NArg())
		}
		if err := checkInts(c, "gradcheck", intFlagRange{"samples", 1, "random directions per tensor"},
			intFlagRange{"top", 0, "0 prints all"}); err != nil {
			return err
		}
		tol := c.Float64("tolerance")
		if err := checkTolerance("gradcheck", tol); err != nil {
			return err
		}
		r, err := gradcheck.Run(c.Args().First(), gradcheck.Options{
			Samples: c.Int("samples"), Seed: c.Uint64("seed"), Device: c.String(deviceFlag.Name),
		})
		if err != nil {
			return err
		}
		if tol == 0 {
			tol = gradcheck.DefaultTolerance(r.DType)
		}
		names := r.Sorted()
		if n := c.Int("top"); n > 0 && n < len(names) {
			names = names[:n]
		}
		w := c.App.Writer
		directions := "directions"
		if r.Samples == 1 {
			directions = "direction"
		}
		fmt.Fprintf(w, "%s graph, loss %.6g, %d adapter tensors, %d %s each\n", r.DType, r.Loss, len(r.Tensor), r.Samples, directions)
		if r.DType != "float64" {
			fmt.Fprintf(w, "note: central differences in %s resolve only a few digits, so this check is coarse (tolerance %.0e); "+
				"the precise check is on a float64 copy of the model: dartc compile SOURCE.onnx -o DIR64 --precision fp64, then dartc gradcheck DIR64\n", r.DType, tol)
		}
		for _, n := range names {
			fmt.Fprintf(w, "  %.3e  %s\n", r.Worst[n], n)
		}
		if !(r.Max <= tol) { // NaN fails too
			if r.DType != "float64" {
				return fmt.Errorf("gradcheck: worst relative error %.3e exceeds the tolerance %.1e; in %s that may be rounding in the differences, not a wrong gradient: the precise check is on a float64 copy of the model (dartc compile SOURCE.onnx -o DIR64 --precision fp64, then dartc gradcheck DIR64)", r.Max, tol, r.DType)
			}
			return fmt.Errorf("gradcheck: worst relative error %.3e exceeds the tolerance %.1e", r.Max, tol)
		}
		fmt.Fprintf(w, "ok: worst relative error %.3e ≤ %.1e\n", r.Max, tol)
		return nil
	},
}
