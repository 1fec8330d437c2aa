package main

import (
	"fmt"

	"github.com/dartc/dartc/gradcheck"
	"github.com/urfave/cli/v2"
)

func init() { register(parityCommand) }

var parityCommand = &cli.Command{
	Name:      "parity",
	Usage:     "compare a compiled model's graphs on the CPU and on another device (CUDA)",
	ArgsUsage: "DIR",
	Description: `Runs logprobs.onnx, train.onnx (loss and every adapter gradient) and greedy decoding of
decode.onnx with the same random inputs and non-zero adapters on the CPU and on --device, and
prints the largest differences: absolute, and relative to the largest CPU value. Exits non-zero
when a relative difference exceeds the tolerance (default 1e-9 for float64 graphs, 2e-2 for
float32: CUDA runs float32 MatMul as TF32). Decoding on --device runs the resident decoder that
rollouts use (adapters and KV cache kept on the device); on the CPU it feeds host tensors.
--device cpu compares the CPU with itself (a dry run).`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "device", Value: "cuda", Usage: "the device compared with the CPU: cuda, or cpu for a dry run"},
		&cli.IntFlag{Name: "batch", Value: 2, Usage: "sequences"},
		&cli.IntFlag{Name: "seq", Value: 16, Usage: "tokens per sequence"},
		&cli.IntFlag{Name: "decode-steps", Value: 16, Usage: "greedy decode steps (0: no decode comparison)"},
		&cli.Uint64Flag{Name: "seed", Value: 0, Usage: "seed of the inputs and adapters"},
		&cli.Float64Flag{Name: "tolerance", Usage: "max relative difference (default: by dtype)"},
	},
	Action: func(c *cli.Context) error {
		if c.NArg() != 1 {
			return fmt.Errorf("parity: want one compiled DIR argument, got %d", c.NArg())
		}
		if err := checkInts(c, "parity", intFlagRange{"batch", 1, "sequences"}, intFlagRange{"seq", 2, "tokens per sequence"},
			intFlagRange{"decode-steps", 0, "0 skips the decode comparison"}); err != nil {
			return err
		}
		tol := c.Float64("tolerance")
		if err := checkTolerance("parity", tol); err != nil {
			return err
		}
		dev := c.String("device")
		r, err := gradcheck.Parity(c.Args().First(), gradcheck.ParityOptions{Device: dev, Seed: c.Uint64("seed"),
			Batch: c.Int("batch"), SeqLen: c.Int("seq"), DecodeSteps: c.Int("decode-steps"), NoDecode: c.Int("decode-steps") == 0})
		if err != nil {
			return err
		}
		if tol == 0 {
			tol = 2e-2
			if r.DType == "float64" {
				tol = 1e-9
			}
		}
		w := c.App.Writer
		fmt.Fprintf(w, "cpu vs %s, %s graphs, batch %d × %d tokens", dev, r.DType, r.Batch, r.SeqLen)
		if r.DecodeSteps > 0 {
			fmt.Fprintf(w, ", %d decode steps", r.DecodeSteps)
		}
		fmt.Fprintln(w)
		for _, d := range []gradcheck.Diff{r.Logprobs, r.Loss, r.Grads, r.Decode} {
			if d.N == 0 {
				continue
			}
			fmt.Fprintf(w, "  %-44s max |Δ| %.3e  relative %.3e  (%d values)\n", d.Name, d.Abs, d.Rel, d.N)
		}
		if r.DecodeTotal > 0 {
			fmt.Fprintf(w, "  greedy decode: %d of %d generated tokens equal before the first divergence\n", r.DecodeSame, r.DecodeTotal)
		}
		if worst := r.Worst(); !(worst <= tol) {
			return fmt.Errorf("parity: worst relative difference %.3e exceeds the tolerance %.1e", worst, tol)
		}
		fmt.Fprintf(w, "ok: worst relative difference %.3e ≤ %.1e\n", r.Worst(), tol)
		return nil
	},
}
