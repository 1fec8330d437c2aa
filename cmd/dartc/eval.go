package main

import (
	"encoding/json"
	"fmt"

	"github.com/dartc/dartc/eval"
	"github.com/dartc/dartc/qa"
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

var evalCommand = &cli.Command{
	Name:  "eval",
	Usage: "evaluate answers on QA benchmarks: EM, F1 and substring EM",
	Description: `Scores answers as Search-R1 does: the last <answer>…</answer> of a response, SQuAD
normalization (lower case, no punctuation, no articles, single spaces), exact match against
any gold answer, token F1 (best gold) and substring exact match. Tables have one column per
dataset, in the paper's order, and the unweighted average over datasets.`,
	Subcommands: []*cli.Command{evalScoreCommand},
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
