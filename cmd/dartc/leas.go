package main

import (
	"context"
	"fmt"
	"math"

	"github.com/dartc/dartc/eval/leas"
	"github.com/dartc/dartc/eval/leasrun"
	"github.com/dartc/dartc/internal/flaglist"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/runtime/agent"
	"github.com/urfave/cli/v2"
)

func init() { register(leasCommand) }

var (
	leasReasonFlag  = &cli.StringFlag{Name: "reason-adapters", Usage: "M_Reas: `FILE`, a checkpoint of dartc train --variant single --grad-tokens reason", Required: true}
	leasToolFlag    = &cli.StringFlag{Name: "tool-adapters", Usage: "M_Tool: `FILE`, a checkpoint of dartc train --variant single --grad-tokens tool", Required: true}
	leasUnifiedFlag = &cli.StringFlag{Name: "unified-adapters", Usage: "M_Unified: `FILE`, a checkpoint of dartc train --variant single --grad-tokens all", Required: true}
	leasKFlag       = &cli.IntFlag{Name: "k", Value: leasrun.DefaultK, Usage: "sampled rollouts per question and configuration"}
	leasAlphaFlag   = &cli.Float64Flag{Name: "alpha", Value: leas.DefaultAlpha, Usage: "smoothing: s = (correct + alpha) / (k + 2·alpha)"}
	leasBatchFlag   = &cli.IntFlag{Name: "batch", Value: leasrun.DefaultBatch, Usage: "questions rolled out together (each k times)"}
	leasTempFlag    = &cli.Float64Flag{Name: "temperature", Value: 1, Usage: "sampling temperature"}
	leasTopPFlag    = &cli.Float64Flag{Name: "top-p", Value: 0.95, Usage: "nucleus sampling mass (1 keeps every token)"}
	leasOutputFlag  = &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "report `DIR` (new or empty, or one leas wrote, which is resumed): rollouts.jsonl, questions.jsonl, results.jsonl (λ per question), summary.json, lambda23.png"}
	leasSeedFlag    = &cli.Uint64Flag{Name: "seed", Usage: "sampling seed (the six configurations share it)"}
)

var leasCommand = &cli.Command{
	Name:      "leas",
	Usage:     "attribute success to the reasoning and tool adapters and their interaction (LEAS)",
	ArgsUsage: "--model DIR --reason-adapters F --tool-adapters F --unified-adapters F --data FILE[,FILE…] [--search INDEX|URL] -k K -o DIR",
	Description: `LEAS evaluates six configurations on the same compiled dual-adapter graph, changing only
the adapter tensors: M_Base (zeros), M_Reas, M_Tool and M_Unified (the trained files, each a
single adapter), H_Tool (base on reasoning positions, M_Tool's adapter in the tool slot) and
H_Reas (M_Reas's adapter in the reasoning slot, base on tool positions). Every question is
rolled out k times per configuration with the same random numbers; the exact-match counts
give smoothed accuracies s_M, and s = σ(x_Mᵀλ) is solved exactly for λ per question.
λ_23 (tool×reason) < 0 means the two skills interfere on that question.

The three trained models are each ONE adapter shared by every token, as in the paper:
  M_Reas     dartc train --variant single --grad-tokens reason   (loss on reasoning tokens)
  M_Tool     dartc train --variant single --grad-tokens tool     (loss on tool tokens)
  M_Unified  dartc train --variant single --grad-tokens all
Pass RUN/checkpoints/step-N/adapters.safetensors of each. Checkpoints record their variant
and grad-tokens; a file of another kind (a dual checkpoint, the compiled initial adapters)
is refused.

Writes DIR/rollouts.jsonl, questions.jsonl (counts), results.jsonl (λ per question),
summary.json (share of questions with interference, λ_23's distribution, its relation to
M_Unified's success) and lambda23.png. Each finished batch of a configuration is appended to
rollouts.jsonl, so rerunning the same command after an error or Ctrl-C resumes per batch;
DIR/settings.json records the model, the three files, the search index (sha256), the
questions, k, batch and seed, and a rerun with other settings is refused. DIR must be new,
empty, or one leas wrote (its settings.json says so): leas never writes into another folder.`,
	Flags: []cli.Flag{evalModelFlag, leasReasonFlag, leasToolFlag, leasUnifiedFlag, evalTokenizerFlag, evalDataFlag, evalSearchFlag,
		leasOutputFlag, evalLimitFlag, leasKFlag, leasAlphaFlag, leasBatchFlag, leasTempFlag, leasTopPFlag, leasSeedFlag,
		evalTurnsFlag, evalTokensFlag, evalDocsFlag, evalQuietFlag, deviceFlag},
	Action: runLEAS,
}

func runLEAS(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("leas: unexpected arguments %q: everything goes in flags", c.Args().Slice())
	}
	for _, f := range []*cli.StringFlag{evalModelFlag, evalDataFlag, leasOutputFlag} {
		if c.String(f.Name) == "" {
			return fmt.Errorf("leas: --%s is required", f.Name)
		}
	}
	if t := c.Float64(leasTempFlag.Name); !(t > 0) {
		return fmt.Errorf("leas: --temperature %v must be > 0: LEAS needs sampled rollouts", t)
	}
	if err := checkCounts(c, "leas", withCounts(map[*cli.IntFlag]int{leasKFlag: 1, leasBatchFlag: 1})); err != nil {
		return err
	}
	// Checked now: leas.Analyze would refuse it only after every rollout.
	if a := c.Float64(leasAlphaFlag.Name); !(a > 0) || math.IsInf(a, 0) {
		return fmt.Errorf("leas: --alpha %v must be a finite number > 0 (the default is %v)", a, leas.DefaultAlpha)
	}
	// Before the --search probe and the model: a folder that is not leas's own is never written into.
	if err := leasrun.CheckOutput(c.String(leasOutputFlag.Name)); err != nil {
		return fmt.Errorf("leas: -o: %w", err)
	}
	searcher, err := openSearcher(c.String(evalSearchFlag.Name))
	if err != nil {
		return fmt.Errorf("leas: --search: %w", err)
	}
	opts := leasrun.Options{
		Agent: agent.Config{Model: c.String(evalModelFlag.Name), Tokenizer: c.String(evalTokenizerFlag.Name),
			Session: &runtime.Options{Device: c.String(deviceFlag.Name)}, Searcher: searcher, TopK: c.Int(evalDocsFlag.Name),
			MaxTurns: agentTurns(c.Int(evalTurnsFlag.Name)), MaxTurnTokens: c.Int(evalTokensFlag.Name),
			Sampling: runtime.Sampling{Temperature: c.Float64(leasTempFlag.Name), TopP: c.Float64(leasTopPFlag.Name)}},
		Trained: map[leas.Config]string{leas.Reas: c.String(leasReasonFlag.Name), leas.Tool: c.String(leasToolFlag.Name),
			leas.Unified: c.String(leasUnifiedFlag.Name)},
		Datasets: flaglist.Split(c.String(evalDataFlag.Name)), Limit: c.Int(evalLimitFlag.Name), K: c.Int(leasKFlag.Name),
		Batch: c.Int(leasBatchFlag.Name), Seed: c.Uint64(leasSeedFlag.Name), Alpha: c.Float64(leasAlphaFlag.Name),
		Dir: c.String(leasOutputFlag.Name), Search: c.String(evalSearchFlag.Name),
	}
	if !c.Bool(evalQuietFlag.Name) {
		opts.Progress = progressWriter() // nil (none) unless stderr is a terminal
	}
	rep, err := leasrun.Run(context.Background(), opts)
	if err != nil {
		return fmt.Errorf("leas: %w", err)
	}
	s, w := rep.Summary, c.App.Writer
	fmt.Fprintf(w, "%d questions × 6 configurations × k = %d in %.1f s; report in %s\n", s.Questions, opts.K, rep.Elapsed.Seconds(), opts.Dir)
	fmt.Fprintf(w, "interference (λ_23 < 0): %.3f of questions; λ_23 mean %.3f, median %.3f\n",
		s.InterferenceFraction, s.Lambda23.Mean, s.Lambda23.Median)
	return nil
}
