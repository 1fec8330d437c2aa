package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/dartc/dartc/eval"
	"github.com/dartc/dartc/eval/run"
	"github.com/dartc/dartc/internal/flaglist"
	"github.com/dartc/dartc/qa"
	"github.com/dartc/dartc/retrieval"
	"github.com/dartc/dartc/retrieval/connect"
	"github.com/dartc/dartc/retrieval/httpretrieve"
	"github.com/dartc/dartc/runtime"
	"github.com/dartc/dartc/runtime/agent"
	"github.com/urfave/cli/v2"
)

func init() { register(evalCommand) }

var (
	evalJSONFlag = &cli.BoolFlag{
		Name: "json", Usage: "print the overall scores and the per-dataset table as JSON",
	}
	evalScoreOutputFlag = &cli.StringFlag{
		Name: "output", Aliases: []string{"o"},
		Usage: "also write the table to `PREFIX`.md, PREFIX.csv and PREFIX.json",
	}
	evalScoreSourceFlag = &cli.StringFlag{
		Name:  "source",
		Usage: "dataset name for rows without data_source (default: from the file name)",
	}
)

// Flags of the rollout evaluation (dartc eval without a subcommand).
var (
	evalModelFlag     = &cli.StringFlag{Name: "model", Usage: "compiled `DIR` written by dartc compile"}
	evalAdaptersFlag  = &cli.StringFlag{Name: "adapters", Usage: "adapters.safetensors to evaluate (default: zeros, the base model)"}
	evalTokenizerFlag = &cli.StringFlag{Name: "tokenizer", Usage: "tokenizer directory (default: the one compiled into --model, else the project's data/qwen2-tokenizer)"}
	evalDataFlag      = &cli.StringFlag{Name: "data", Usage: "comma-separated dataset files (FlashRAG or R1-Searcher JSONL, Search-R1 parquet)"}
	evalSearchFlag    = &cli.StringFlag{Name: "search", Usage: "BM25 index file or /retrieve URL answering <search> calls (default: none, searches return no passage)"}
	evalOutputFlag    = &cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "report `DIR`: predictions.jsonl and table.{md,csv,json}; new or empty, or an eval report, which is resumed"}
	evalLimitFlag     = &cli.IntFlag{Name: "limit", Usage: "evaluate the first N questions of each dataset (0: all)"}
	evalBatchFlag     = &cli.IntFlag{Name: "batch", Value: run.DefaultBatch, Usage: "questions rolled out together"}
	evalTurnsFlag     = &cli.IntFlag{Name: "max-turns", Value: agent.DefaultMaxTurns, Usage: "turns that may search before the final answer turn (0: answer without searching)"}
	evalTokensFlag    = &cli.IntFlag{Name: "max-turn-tokens", Value: agent.DefaultMaxTurnTokens, Usage: "tokens generated per turn"}
	evalDocsFlag      = &cli.IntFlag{Name: "docs", Value: agent.DefaultTopK, Usage: "passages per search"}
	evalQuietFlag     = &cli.BoolFlag{Name: "quiet", Usage: "no progress bar"}
)

var evalCommand = &cli.Command{
	Name:      "eval",
	Usage:     "evaluate a compiled model on QA benchmarks with greedy agent rollouts, or score predictions",
	ArgsUsage: "--model DIR --data A.jsonl,B.jsonl,… -o REPORT [--adapters FILE] [--search INDEX|URL] [--limit N] [--batch B] [--max-turns N]",
	Description: `Without a subcommand, eval rolls out every question of --data once with the Search-R1
agent loop and greedy decoding (Search-R1's evaluation setting) on the compiled model with
--adapters, answering <search> calls from --search. Each answer is scored as Search-R1 does:
the last <answer>…</answer> the policy wrote, SQuAD normalization (lower case, no
punctuation, no articles, single spaces), exact match against any gold answer, token F1
(best gold) and substring exact match.

REPORT must be new, empty, or a report of dartc eval (its settings.json says so): eval
never writes into another folder. REPORT/predictions.jsonl gets one line per question
(question, golds, response, answer, searches, scores) as soon as its batch finishes; rerunning with the same -o skips the
questions already there, so an interrupted evaluation resumes. REPORT/settings.json records
the model, the adapters (sha256), the search backend (a BM25 index by path and sha256, a
/retrieve URL as given) and the loop settings, and every line carries their id: a rerun with
other adapters or settings, or with an index rebuilt in place, is refused, never mixed in. A
report from before the index's sha256 was recorded resumes with a warning (start over in a
new REPORT if its index was rebuilt since).
REPORT/table.md, .csv and .json hold the paper-shaped table: one column per dataset in the
paper's order and the unweighted average over datasets.

eval score scores an existing predictions file without a model.`,
	Flags: []cli.Flag{evalModelFlag, evalAdaptersFlag, evalTokenizerFlag, evalDataFlag, evalSearchFlag, evalOutputFlag,
		evalLimitFlag, evalBatchFlag, evalTurnsFlag, evalTokensFlag, evalDocsFlag, evalQuietFlag, deviceFlag},
	Action:      runEval,
	Subcommands: []*cli.Command{evalScoreCommand},
}

// checkCounts is checkInts over a map of flags to their least values (in
// name order, each flag's usage as its note). The drivers and agent.Config
// read 0 (and some negatives) as defaults, so --docs 0 would run with 3
// passages, --limit -5 on every question, and be recorded as something else.
func checkCounts(c *cli.Context, cmd string, least map[*cli.IntFlag]int) error {
	var ranges []intFlagRange
	for _, f := range slices.SortedFunc(maps.Keys(least), func(a, b *cli.IntFlag) int { return strings.Compare(a.Name, b.Name) }) {
		ranges = append(ranges, intFlagRange{f.Name, least[f], f.Usage})
	}
	return checkInts(c, cmd, ranges...)
}

// agentCounts are the least values of the agent-loop and question flags
// that eval, leas and gradangle share: --limit 0 and --max-turns 0 mean
// something (every question; answer without searching), other zeros not.
var agentCounts = map[*cli.IntFlag]int{evalLimitFlag: 0, evalTurnsFlag: 0, evalTokensFlag: 1, evalDocsFlag: 1}

// withCounts adds a command's own count flags to agentCounts.
func withCounts(own map[*cli.IntFlag]int) map[*cli.IntFlag]int {
	m := maps.Clone(agentCounts)
	maps.Copy(m, own)
	return m
}

// openSearcher opens a BM25 index or a /retrieve URL; "" means none.
func openSearcher(spec string) (retrieval.Searcher, error) {
	if spec == "" {
		return nil, nil
	}
	return connect.Open(spec, httpretrieve.ClientOptions{})
}

// agentTurns maps the --max-turns value to agent.Config.MaxTurns, which
// reads 0 as its default.
func agentTurns(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

func runEval(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("eval: unknown subcommand or argument %q (subcommands: score; the model evaluation takes only flags)", c.Args().First())
	}
	for _, f := range []*cli.StringFlag{evalModelFlag, evalDataFlag, evalOutputFlag} {
		if c.String(f.Name) == "" {
			return fmt.Errorf("eval: --%s is required (dartc eval --model DIR --data A.jsonl,… -o REPORT; or dartc eval score FILE)", f.Name)
		}
	}
	if err := checkCounts(c, "eval", withCounts(map[*cli.IntFlag]int{evalBatchFlag: 1})); err != nil {
		return err
	}
	// Before the model loads: a folder that is not eval's own is never written into.
	if err := run.CheckOutput(c.String(evalOutputFlag.Name)); err != nil {
		return fmt.Errorf("eval: -o: %w", err)
	}
	searcher, err := openSearcher(c.String(evalSearchFlag.Name))
	if err != nil {
		return fmt.Errorf("eval: --search: %w", err)
	}
	acfg := agent.Config{
		Model: c.String(evalModelFlag.Name), Tokenizer: c.String(evalTokenizerFlag.Name),
		Adapters: c.String(evalAdaptersFlag.Name), Session: &runtime.Options{Device: c.String(deviceFlag.Name)},
		Searcher: searcher, TopK: c.Int(evalDocsFlag.Name), MaxTurns: agentTurns(c.Int(evalTurnsFlag.Name)),
		MaxTurnTokens: c.Int(evalTokensFlag.Name), Sampling: runtime.Sampling{}, // greedy
	}
	a, err := agent.New(acfg)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	defer a.Close()
	settings, err := run.AgentSettings(acfg, c.String(evalSearchFlag.Name))
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	opts := run.Options{Datasets: flaglist.Split(c.String(evalDataFlag.Name)), Dir: c.String(evalOutputFlag.Name),
		Limit: c.Int(evalLimitFlag.Name), Batch: c.Int(evalBatchFlag.Name), Title: c.String(evalAdaptersFlag.Name),
		Settings: settings}
	// Refuse an over-long question before any rollout, not when its batch comes.
	exs, err := run.LoadQuestions(opts.Datasets, opts.Limit)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	if err := a.CheckPrompts(questions(exs)); err != nil {
		return fmt.Errorf("eval: --data: %w", err)
	}
	if !c.Bool(evalQuietFlag.Name) {
		opts.Progress = progressWriter() // nil (none) unless stderr is a terminal
	}
	res, err := run.Run(context.Background(), run.AgentRoller{Agent: a}, opts)
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "%d questions (%d resumed, %d rolled out", res.Total, res.Resumed, res.Rolled)
	if res.Rolled > 0 {
		fmt.Fprintf(w, " at %.3f questions/s, %d searches", res.QuestionsPerSecond(), res.Searches)
	}
	fmt.Fprintf(w, "); report in %s\n", opts.Dir)
	fmt.Fprintf(w, "EM %.4f  F1 %.4f  SubEM %.4f over all questions\n\n", res.Overall.EM, res.Overall.F1, res.Overall.SubEM)
	return res.Table.WriteMarkdown(w)
}

var evalScoreCommand = &cli.Command{
	Name:      "score",
	Usage:     "score existing predictions without a model",
	ArgsUsage: "FILE",
	Description: `FILE is JSONL, one question per line: "golden_answers" (a list, or one string) and either
"pred" (the answer itself) or "response" (the full model output; its last <answer> is
scored, and a response without one scores 0). An optional "data_source" or "source" groups
rows into datasets for the table.`,
	Flags: []cli.Flag{evalJSONFlag, evalScoreOutputFlag, evalScoreSourceFlag},
	Action: func(c *cli.Context) error {
		if c.NArg() != 1 {
			return fmt.Errorf("eval score: want one predictions file, got %d arguments (flags go before FILE: dartc eval score --json FILE)", c.NArg())
		}
		path := c.Args().First()
		preds, err := eval.ReadPredictions(path, c.String(evalScoreSourceFlag.Name))
		if err != nil {
			return err
		}
		board := eval.ScorePredictions(preds)
		overall, n := board.Overall()
		table := board.MetricsTable("")
		if prefix := c.String(evalScoreOutputFlag.Name); prefix != "" {
			if err := table.Save(prefix); err != nil {
				return err
			}
		}
		w := c.App.Writer
		if c.Bool(evalJSONFlag.Name) {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(struct {
				File      string      `json:"file"`
				Questions int         `json:"questions"`
				Overall   qa.Score    `json:"overall"`
				Table     *eval.Table `json:"table"`
			}{path, n, overall, table})
		}
		fmt.Fprintf(w, "%s: %d questions\n", path, n)
		fmt.Fprintf(w, "EM     %.4f\nF1     %.4f\nSubEM  %.4f\n\n", overall.EM, overall.F1, overall.SubEM)
		return table.WriteMarkdown(w)
	},
}
