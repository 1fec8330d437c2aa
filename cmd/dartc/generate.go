package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/dartc/dartc/retrieval"
	"github.com/dartc/dartc/retrieval/connect"
	"github.com/dartc/dartc/retrieval/httpretrieve"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/runtime/agent"
	"github.com/urfave/cli/v2"
)

func init() { register(generateCommand) }

var (
	generateModelFlag     = &cli.StringFlag{Name: "model", Usage: "compiled `DIR` written by dartc compile", Required: true}
	generateAdaptersFlag  = &cli.StringFlag{Name: "adapters", Usage: "adapters.safetensors to run with (default: zeros, the base model)"}
	generateTokenizerFlag = &cli.StringFlag{Name: "tokenizer", Usage: "tokenizer directory (default: the one compiled into --model, else the project's data/qwen2-tokenizer)"}
	generateSearchFlag    = &cli.StringFlag{Name: "search", Usage: "BM25 index file or /retrieve URL answering <search> calls (default: none, searches return no passage)"}
	generatePromptFlag    = &cli.StringFlag{Name: "prompt", Usage: "the question, put in Search-R1's prompt", Required: true}
	generateGreedyFlag    = &cli.BoolFlag{Name: "greedy", Usage: "pick the most likely token (overrides --temperature)"}
	generateTempFlag      = &cli.Float64Flag{Name: "temperature", Value: 1, Usage: "sampling temperature (Search-R1: 1.0)"}
	generateTopPFlag      = &cli.Float64Flag{Name: "top-p", Value: 0.95, Usage: "nucleus sampling mass (Search-R1: 0.95; 1 keeps every token)"}
	generateTopKFlag      = &cli.IntFlag{Name: "top-k", Usage: "keep the K most likely tokens (0: all)"}
	generateSeedFlag      = &cli.Uint64Flag{Name: "seed", Usage: "seed of the sampling RNG"}
	generateTurnsFlag     = &cli.IntFlag{Name: "max-turns", Value: agent.DefaultMaxTurns, Usage: "turns that may search before the final answer turn"}
	generateTokensFlag    = &cli.IntFlag{Name: "max-turn-tokens", Value: agent.DefaultMaxTurnTokens, Usage: "tokens generated per turn"}
	generateTopKDocsFlag  = &cli.IntFlag{Name: "docs", Value: agent.DefaultTopK, Usage: "passages per search"}
)

var generateCommand = &cli.Command{
	Name:      "generate",
	Usage:     "answer a question with the Search-R1 agent loop, streaming the text",
	ArgsUsage: "--model DIR --prompt TEXT [--adapters FILE] [--tokenizer DIR] [--search INDEX|URL] [--greedy | --temperature T --top-p P --top-k K] [--seed S] [--max-turns N]",
	Description: `Generate puts --prompt in Search-R1's prompt (ChatML, Qwen2.5's default system message)
and runs the agent loop on the compiled model: each turn generates until </search>, </answer> or
EOS; a search is answered by --search and its passages are appended as
<information>…</information>; after --max-turns turns a final turn runs without search.

The response streams to standard output as it is generated (observations included); a summary
(tokens, searches, answer, stop reason, tokens/s) goes to standard error.`,
	Flags: []cli.Flag{generateModelFlag, generateAdaptersFlag, generateTokenizerFlag, generateSearchFlag, generatePromptFlag,
		generateGreedyFlag, generateTempFlag, generateTopPFlag, generateTopKFlag, generateSeedFlag, generateTurnsFlag,
		generateTokensFlag, generateTopKDocsFlag, deviceFlag},
	Action: runGenerate,
}

func runGenerate(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("generate: unexpected arguments %q: the question goes in --prompt", c.Args().Slice())
	}
	// The agent reads 0 as its default (500 tokens, 3 passages): refuse
	// it here rather than run with a value the user did not ask for.
	if err := checkInts(c, "generate", intFlagRange{generateTurnsFlag.Name, 0, "0 answers at once, without searching"},
		intFlagRange{generateTokensFlag.Name, 1, "tokens generated per turn"},
		intFlagRange{generateTopKDocsFlag.Name, 1, "passages per search"}); err != nil {
		return err
	}
	sampling := runtime.Sampling{Temperature: c.Float64(generateTempFlag.Name), TopP: c.Float64(generateTopPFlag.Name), TopK: c.Int(generateTopKFlag.Name)}
	if c.Bool(generateGreedyFlag.Name) {
		sampling = runtime.Sampling{}
	} else if sampling.Temperature <= 0 {
		return fmt.Errorf("generate: --temperature %v must be > 0; use --greedy for greedy decoding", sampling.Temperature)
	}
	var searcher retrieval.Searcher
	if spec := c.String(generateSearchFlag.Name); spec != "" {
		s, err := connect.Open(spec, httpretrieve.ClientOptions{})
		if err != nil {
			return fmt.Errorf("generate: --search: %w", err)
		}
		searcher = s
	}
	maxTurns := agentTurns(c.Int(generateTurnsFlag.Name))
	out := c.App.Writer
	a, err := agent.New(agent.Config{
		Model: c.String(generateModelFlag.Name), Tokenizer: c.String(generateTokenizerFlag.Name),
		Adapters: c.String(generateAdaptersFlag.Name), Session: &runtime.Options{Device: c.String(deviceFlag.Name)},
		Searcher: searcher, TopK: c.Int(generateTopKDocsFlag.Name), MaxTurns: maxTurns,
		MaxTurnTokens: c.Int(generateTokensFlag.Name), Sampling: sampling,
		Stream: func(_ int, text []byte) { out.Write(text) },
	})
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	defer a.Close()
	trs, err := a.Run(context.Background(), []agent.Question{{Question: c.String(generatePromptFlag.Name)}}, 1, c.Uint64(generateSeedFlag.Name))
	if err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	fmt.Fprintln(out)
	tr, st := trs[0], a.LastStats()
	w := c.App.ErrWriter
	fmt.Fprintf(w, "tokens:   %d prompt, %d response (%d generated)\n", tr.PromptLen, tr.ResponseTokens(), tr.PolicyTokens())
	fmt.Fprintf(w, "searches: %d %s\n", len(tr.Searches), quoteAll(tr.Searches))
	fmt.Fprintf(w, "answer:   %q\n", tr.Answer)
	fmt.Fprintf(w, "stop:     %s after %d turns\n", tr.Stop, tr.Turns)
	if secs := st.Decode.Total.Seconds(); secs > 0 {
		fmt.Fprintf(w, "speed:    %.1f tokens/s (%d decode steps in %.2f s, %.1f%% outside ONNX Runtime)\n",
			float64(st.Generated)/secs, st.Decode.Steps, secs, 100*st.Decode.GoShare())
	}
	return nil
}

func quoteAll(s []string) string {
	q := make([]string, len(s))
	for i, x := range s {
		q[i] = fmt.Sprintf("%q", x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
