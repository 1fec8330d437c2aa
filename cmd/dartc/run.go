package main

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dartc/dartc/runtime"
	"github.com/urfave/cli/v2"
)

func init() { register(runCommand) }

var (
	runStepsFlag = &cli.IntFlag{Name: "steps", Value: 8, Usage: "number of tokens to generate"}
	runPromptIDs = &cli.StringFlag{Name: "prompt-ids", Value: "1 2 3", Usage: "prompt token ids, separated by spaces"}
	runTempFlag  = &cli.Float64Flag{Name: "temperature", Usage: "sampling temperature (0: greedy)"}
	runTopPFlag  = &cli.Float64Flag{Name: "top-p", Usage: "nucleus sampling mass (0 or 1 keeps every token)"}
	runTopKFlag  = &cli.IntFlag{Name: "top-k", Usage: "keep the k most likely tokens (0 keeps every token)"}
	runSeedFlag  = &cli.Uint64Flag{Name: "seed", Usage: "seed of the sampling streams"}
	runLogits    = &cli.BoolFlag{Name: "logits", Usage: "fetch the logits at every step and summarize the last ones (draws in Go)"}
)

var runCommand = &cli.Command{
	Name:      "run",
	Usage:     "run greedy or sampled decoding on a model file or a compiled directory",
	ArgsUsage: "[--steps N] [--prompt-ids \"1 2 3\"] [--temperature T --top-p P --top-k K --seed S] [--logits] MODEL.onnx|DIR",
	Description: `Run generates --steps tokens from --prompt-ids with the KV cache, greedily or, with
--temperature > 0, sampled (top-p and top-k as in ` + "`dartc generate`" + `), and prints the generated
ids, their log-probs, and the share of the time spent outside ONNX Runtime. DIR is a directory
written by ` + "`dartc compile`" + ` (its decode.onnx is run with the adapters set to zero, i.e. the
base model), whose graph samples itself: no logits leave ONNX Runtime unless --logits asks for
them. MODEL.onnx is a decoder exported with the Hugging Face KV-cache convention; it is sampled
in Go from its logits.`,
	Flags: []cli.Flag{runStepsFlag, runPromptIDs, runTempFlag, runTopPFlag, runTopKFlag, runSeedFlag, runLogits, deviceFlag},
	Action: func(c *cli.Context) error {
		if c.NArg() != 1 {
			return fmt.Errorf("run: want one MODEL.onnx or compiled DIR, got %d arguments", c.NArg())
		}
		if err := checkInts(c, "run", intFlagRange{runStepsFlag.Name, 1, "tokens to generate"}); err != nil {
			return err
		}
		// Checked before the model loads, which may take a while.
		sampling := runtime.Sampling{Temperature: c.Float64(runTempFlag.Name), TopP: c.Float64(runTopPFlag.Name), TopK: c.Int(runTopKFlag.Name)}
		if err := sampling.Validate(); err != nil {
			return fmt.Errorf("run: %w", err)
		}
		prompt, err := parseRunPromptIDs(c.String(runPromptIDs.Name))
		if err != nil {
			return fmt.Errorf("run: --prompt-ids: %w", err)
		}
		opts := &runtime.Options{Device: c.String(deviceFlag.Name)}
		path := c.Args().First()
		st, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("run: %w", err)
		}
		var dec *runtime.Decoder
		if st.IsDir() {
			dec, err = runtime.NewDecoderFromManifest(path, opts)
		} else {
			dec, err = runtime.NewDecoder(runtime.DecoderSpec{Path: path, Options: opts})
		}
		if err != nil {
			return fmt.Errorf("run: %w", err)
		}
		defer dec.Destroy()
		// Inputs generation does not compute (the adapters) are fed as
		// zeros: with B = 0 the compiled graph is the base model.
		static := map[string]*runtime.Tensor{}
		for _, in := range dec.StaticInputs() {
			shape := make([]int64, len(in.Dims))
			for i, d := range in.Dims {
				if d < 0 {
					return fmt.Errorf("run: input %v is not part of the Hugging Face KV-cache convention (input_ids, attention_mask, position_ids, past_key_values.N.key/value) and has symbolic dims, so it cannot be fed as a constant", in)
				}
				shape[i] = d
			}
			static[in.Name] = runtime.NewTensor(in.DType, shape...)
		}
		seqs, stats, err := dec.Generate(context.Background(), [][]int64{prompt}, runtime.GenerateConfig{
			MaxNewTokens: c.Int(runStepsFlag.Name), Inputs: static, KeepLastLogits: c.Bool(runLogits.Name),
			Sampling: sampling, Seed: c.Uint64(runSeedFlag.Name),
		})
		if err != nil {
			return fmt.Errorf("run: %w", err)
		}
		w := c.App.Writer
		fmt.Fprintf(w, "model:     %s (cache: %v, static inputs: %d)\n", filepath.Clean(path), dec.HasCache(), len(static))
		fmt.Fprintf(w, "prompt:    %v\n", prompt)
		fmt.Fprintf(w, "generated: %v\n", seqs[0].Tokens)
		fmt.Fprintf(w, "log-probs: %s\n", formatRunFloats(seqs[0].LogProbs))
		where := "argmax in Go"
		switch {
		case c.Bool(runLogits.Name) || (!sampling.Greedy() && !dec.HasGraphSampler()):
			where = "drawn in Go from the logits"
		case sampling.Greedy() && dec.HasGraphSampler():
			where = "argmax in the graph"
		case dec.HasGraphSampler():
			where = fmt.Sprintf("sampled in the graph, %d redraws", stats.Redraws)
		}
		fmt.Fprintf(w, "sampling:  %s (%s)\n", describeSampling(sampling), where)
		fmt.Fprintf(w, "stop:      %s after %d steps (%.1f ms, %.1f tokens/s)\n",
			seqs[0].Stop, stats.Steps, float64(stats.Total.Microseconds())/1000, float64(len(seqs[0].Tokens))/stats.Total.Seconds())
		fmt.Fprintf(w, "go share:  %.1f%% of the time outside ONNX Runtime\n", 100*stats.GoShare())
		if c.Bool(runLogits.Name) {
			fmt.Fprintf(w, "last logits: %s\n", summarizeRunLogits(seqs[0].LastLogits))
		}
		return nil
	},
}

func parseRunPromptIDs(s string) ([]int64, error) {
	var ids []int64
	for _, f := range strings.Fields(s) {
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a token id", f)
		}
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no token ids in %q", s)
	}
	return ids, nil
}

func formatRunFloats(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(x, 'f', 4, 64)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

func summarizeRunLogits(x []float64) string {
	if len(x) == 0 {
		return "none"
	}
	minV, maxV, sum := math.Inf(1), math.Inf(-1), 0.0
	for _, v := range x {
		minV, maxV, sum = math.Min(minV, v), math.Max(maxV, v), sum+v
	}
	return fmt.Sprintf("vocab %d, argmax %d, max %.4f, min %.4f, mean %.4f", len(x), runtime.Argmax(x), maxV, minV, sum/float64(len(x)))
}

func describeSampling(s runtime.Sampling) string {
	if s.Greedy() {
		return "greedy"
	}
	return fmt.Sprintf("temperature %g, top-p %g, top-k %d", s.Temperature, s.TopP, s.TopK)
}
