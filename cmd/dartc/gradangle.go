package main

import (
	"context"
	"fmt"

	"github.com/dartc/dartc/eval/gradanglerun"
	"github.com/dartc/dartc/internal/flaglist"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/runtime/agent"
	"github.com/urfave/cli/v2"
)

func init() { register(gradangleCommand) }

var (
	gradangleGroupFlag  = &cli.IntFlag{Name: "group", Value: 1, Usage: "rollouts per question"}
	gradangleBatchFlag  = &cli.IntFlag{Name: "batch", Value: gradanglerun.DefaultBatch, Usage: "questions rolled out together"}
	gradangleTempFlag   = &cli.Float64Flag{Name: "temperature", Value: 1, Usage: "sampling temperature"}
	gradangleTopPFlag   = &cli.Float64Flag{Name: "top-p", Value: 0.95, Usage: "nucleus sampling mass (1 keeps every token)"}
	gradangleSeedFlag   = &cli.Uint64Flag{Name: "seed", Usage: "sampling seed"}
	gradangleOutputFlag = &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "report `DIR` (new or empty, or one gradangle wrote, which is resumed): samples.jsonl, angles.json, summary.json, angles.png"}
	// Not eval's --adapters: there is no default, the angles are those of a
	// given adapter.
	gradangleAdaptersFlag = &cli.StringFlag{Name: "adapters", Required: true,
		Usage: "adapters `FILE` to measure (required): its reasoning slot is the shared adapter, put in every slot (a checkpoint's adapters.safetensors; for the base model, the compiled DIR/adapters.safetensors)"}
)

var gradangleCommand = &cli.Command{
	Name:      "gradangle",
	Usage:     "measure the angles between reasoning-token and tool-token gradients of a shared adapter",
	ArgsUsage: "--model DIR --adapters F --data FILE[,FILE…] [--search INDEX|URL] -o DIR",
	Description: `Gradangle rolls out the questions with one shared adapter (the reasoning slot of
--adapters, put in every slot), then for each rollout runs train.onnx twice with every position
in role 0: once with token weights 1 on the policy tokens the router marks as reasoning and
once on those it marks as tool calls (advantage 1, old and reference log-probs = the sampled
ones, no KL). Each run's adapter gradient is −Σ ∇log π over that kind's tokens. Reported: the
angle between the two within each rollout (reason–tool), and across pairs of rollouts
(reason–reason, tool–tool); the paper finds reason–tool angles near 90°.

Writes DIR/samples.jsonl, angles.json, summary.json and angles.png. --model must be compiled
with train.onnx. Each finished batch's gradients are kept in DIR/partial/ until the report is
written, so rerunning the same command after an error or Ctrl-C resumes per batch; a rerun
with other settings (DIR/settings.json, the search index by sha256) is refused. DIR must be
new, empty, or one gradangle wrote (its settings.json says so); once the report is written,
gradangle deletes only the files it put in DIR/partial/, and the folder if that empties it.`,
	Flags: []cli.Flag{evalModelFlag, gradangleAdaptersFlag, evalTokenizerFlag, evalDataFlag, evalSearchFlag, gradangleOutputFlag,
		evalLimitFlag, gradangleGroupFlag, gradangleBatchFlag, gradangleTempFlag, gradangleTopPFlag, gradangleSeedFlag,
		evalTurnsFlag, evalTokensFlag, evalDocsFlag, evalQuietFlag, deviceFlag},
	Action: runGradangle,
}

func runGradangle(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("gradangle: unexpected arguments %q: everything goes in flags", c.Args().Slice())
	}
	for _, f := range []*cli.StringFlag{evalModelFlag, gradangleAdaptersFlag, evalDataFlag, gradangleOutputFlag} {
		if c.String(f.Name) == "" {
			return fmt.Errorf("gradangle: --%s is required", f.Name)
		}
	}
	if t := c.Float64(gradangleTempFlag.Name); !(t > 0) {
		return fmt.Errorf("gradangle: --temperature %v must be > 0 (the recorded log-probs are those of temperature-1 sampling)", t)
	}
	if err := checkCounts(c, "gradangle", withCounts(map[*cli.IntFlag]int{gradangleGroupFlag: 1, gradangleBatchFlag: 1})); err != nil {
		return err
	}
	// Before the --search probe and the model: a folder that is not gradangle's own is never written into.
	if err := gradanglerun.CheckOutput(c.String(gradangleOutputFlag.Name)); err != nil {
		return fmt.Errorf("gradangle: -o: %w", err)
	}
	searcher, err := openSearcher(c.String(evalSearchFlag.Name))
	if err != nil {
		return fmt.Errorf("gradangle: --search: %w", err)
	}
	opts := gradanglerun.Options{
		Agent: agent.Config{Model: c.String(evalModelFlag.Name), Adapters: c.String(gradangleAdaptersFlag.Name),
			Tokenizer: c.String(evalTokenizerFlag.Name), Session: &runtime.Options{Device: c.String(deviceFlag.Name)},
			Searcher: searcher, TopK: c.Int(evalDocsFlag.Name), MaxTurns: agentTurns(c.Int(evalTurnsFlag.Name)),
			MaxTurnTokens: c.Int(evalTokensFlag.Name),
			Sampling:      runtime.Sampling{Temperature: c.Float64(gradangleTempFlag.Name), TopP: c.Float64(gradangleTopPFlag.Name)}},
		Datasets: flaglist.Split(c.String(evalDataFlag.Name)), Limit: c.Int(evalLimitFlag.Name), Group: c.Int(gradangleGroupFlag.Name),
		Batch: c.Int(gradangleBatchFlag.Name), Seed: c.Uint64(gradangleSeedFlag.Name), Dir: c.String(gradangleOutputFlag.Name),
		Search: c.String(evalSearchFlag.Name),
	}
	if !c.Bool(evalQuietFlag.Name) {
		opts.Progress = progressWriter() // nil (none) unless stderr is a terminal
	}
	rep, err := gradanglerun.Run(context.Background(), opts)
	if err != nil {
		return fmt.Errorf("gradangle: %w", err)
	}
	s, w := rep.Summary, c.App.Writer
	fmt.Fprintf(w, "%d rollouts in %.1f s; report in %s\n", len(rep.Samples), rep.Elapsed.Seconds(), opts.Dir)
	for _, d := range []struct {
		name string
		n    int
		mean float64
	}{{"reason–tool", s.ReasonTool.N, s.ReasonTool.Mean}, {"reason–reason", s.ReasonReason.N, s.ReasonReason.Mean},
		{"tool–tool", s.ToolTool.N, s.ToolTool.Mean}} {
		fmt.Fprintf(w, "%-14s %4d angles, mean %.1f°\n", d.name, d.n, d.mean)
	}
	if s.SkippedTool > 0 {
		fmt.Fprintf(w, "%d rollouts made no tool call (no tool gradient)\n", s.SkippedTool)
	}
	return nil
}
