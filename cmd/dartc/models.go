package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/dartc/dartc/grpo"
	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
	"github.com/urfave/cli/v2"
)

func init() { register(modelsCommand) }

var modelsCommand = &cli.Command{
	Name:  "models",
	Usage: "list model presets and synthesize Qwen2-shaped ONNX models",
	Subcommands: []*cli.Command{
		modelsPresetsCommand,
		modelsSynthCommand,
	},
}

var modelsPresetsCommand = &cli.Command{
	Name:  "presets",
	Usage: "list the Qwen2 family presets and their shapes",
	Action: func(c *cli.Context) error {
		w := tabwriter.NewWriter(c.App.Writer, 0, 0, 2, ' ', 0)
		fmt.Fprintln(w, "preset\tlayers\thidden\theads\tkv heads\thead dim\tintermediate\tvocab\ttied\tparameters")
		for _, name := range qwen2.PresetNames() {
			p, err := qwen2.Preset(name)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%v\t%s\n", name, p.Layers, p.Hidden, p.Heads, p.KVHeads,
				p.HeadDim, p.Intermediate, p.Vocab, p.TiedEmbed, humanCount(p.ParamCount()))
		}
		return w.Flush()
	},
}

var modelsSynthCommand = &cli.Command{
	Name:  "synth",
	Usage: "write a Qwen2-shaped ONNX decoder with seeded weights",
	Description: `Writes DIR/model.onnx (and DIR/model.onnx.data when the weights are external): a Qwen2
decoder with the preset's shapes in the op pattern of a real export. --linear-form picks how
the projections appear: torchscript (torch.onnx.export dynamo=False, as optimum runs it:
MatMul with pre-transposed anonymous weights), dynamo (MatMul of Transpose(W) with named
weights and name_scopes metadata) or gemm (Gemm with transB=1).

Up to 64M parameters the weights are seeded random values; above, they are zeros in a sparse
external data file that takes no disk space, so real shapes (qwen2.5-3b, qwen2.5-7b) can be
compiled and inspected without weights. The directory is written atomically.`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "output directory", Required: true},
		&cli.StringFlag{Name: "preset", Value: "tiny", Usage: "model shape: tiny, qwen2.5-0.5b, qwen2.5-3b or qwen2.5-7b"},
		&cli.StringFlag{Name: "dtype", Value: "float32", Usage: "float32, float64, float16 or bfloat16 (low types: weights and activations in that type throughout)"},
		&cli.BoolFlag{Name: "kv-cache", Usage: "add past_key_values.* inputs and present.* outputs"},
		&cli.StringFlag{Name: "linear-form", Value: "torchscript", Usage: "torchscript, dynamo or gemm"},
		&cli.Uint64Flag{Name: "seed", Value: 0, Usage: "seed of the random weights"},
		&cli.IntFlag{Name: "layers", Usage: "override the preset's number of layers"},
		&cli.IntFlag{Name: "vocab", Usage: "override the preset's vocabulary size (151936 fits the Qwen2 tokenizer)"},
		&cli.StringFlag{Name: "weights", Value: "auto", Usage: "auto, random or zero"},
		&cli.StringFlag{Name: "storage", Value: "auto", Usage: "auto, inline or external"},
		&cli.BoolFlag{Name: "force", Usage: "replace an existing output directory"},
	},
	Action: func(c *cli.Context) error {
		if c.NArg() != 0 {
			return fmt.Errorf("models synth: unexpected arguments %v (the output directory goes in -o)", c.Args().Slice())
		}
		cfg, err := qwen2.Preset(c.String("preset"))
		if err != nil {
			return err
		}
		if c.IsSet("layers") {
			if c.Int("layers") <= 0 {
				return fmt.Errorf("models synth: --layers must be positive, got %d", c.Int("layers"))
			}
			cfg.Layers = c.Int("layers")
		}
		if c.IsSet("vocab") {
			if c.Int("vocab") <= 0 {
				return fmt.Errorf("models synth: --vocab must be positive, got %d", c.Int("vocab"))
			}
			cfg.Vocab = c.Int("vocab")
		}
		opts := synth.Options{KVCache: c.Bool("kv-cache"), Seed: c.Uint64("seed"), Force: c.Bool("force")}
		if opts.DType, err = synth.ParseDType(c.String("dtype")); err != nil {
			return err
		}
		if opts.LinearForm, err = synth.ParseLinearForm(c.String("linear-form")); err != nil {
			return err
		}
		switch c.String("weights") {
		case "auto":
		case "random":
			opts.Weights = synth.WeightsRandom
		case "zero":
			opts.Weights = synth.WeightsZero
		default:
			return fmt.Errorf("models synth: --weights %q: want auto, random or zero", c.String("weights"))
		}
		switch c.String("storage") {
		case "auto":
		case "inline":
			opts.Storage = synth.StorageInline
		case "external":
			opts.Storage = synth.StorageExternal
		default:
			return fmt.Errorf("models synth: --storage %q: want auto, inline or external", c.String("storage"))
		}
		// Random weights are drawn in memory (float64) before they are
		// written: refuse what this machine cannot hold, before the kernel
		// kills the process without a word.
		if opts.Random(cfg) {
			need := float64(synth.RandomWeightBytes(cfg))
			if limit := grpo.MemoryLimit(); limit > 0 && need > limit {
				return fmt.Errorf("models synth: random weights for %s parameters take about %s while they are written, more than the %s this machine has available: use --weights zero (a sparse data file, no memory), fewer --layers or a smaller --vocab",
					humanCount(cfg.ParamCount()), humanBytes(int64(need)), humanBytes(int64(limit)))
			}
		}
		res, err := synth.Synthesize(cfg, c.String("out"), opts)
		if err != nil {
			return err
		}
		weights := "zero"
		if res.Weights != nil {
			weights = fmt.Sprintf("random (seed %d)", opts.Seed)
		}
		fmt.Fprintf(c.App.Writer, "wrote %s: %s, %d layers, %s, %s form, kv cache %v, %d nodes, %s parameters, weights %s\n",
			res.ModelPath, c.String("preset"), cfg.Layers, opts.DType, opts.LinearForm, opts.KVCache, res.Nodes,
			humanCount(cfg.ParamCount()), weights)
		if res.DataPath != "" {
			fmt.Fprintf(c.App.Writer, "wrote %s: %s apparent\n", res.DataPath, humanBytes(res.DataSize))
		}
		return nil
	},
}

func humanCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", n)
}
