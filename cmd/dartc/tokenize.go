package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/dartc/dartc/models/tokenizer"
	"github.com/urfave/cli/v2"
)

func init() { register(tokenizeCommand) }

var (
	tokenizeDirFlag = &cli.StringFlag{
		Name: "tokenizer", Usage: "tokenizer directory (tokenizer.json, or vocab.json + merges.txt; tokenizer_config.json); default: data/qwen2-tokenizer found upwards from the working directory or the binary",
		EnvVars: []string{"DARTC_TOKENIZER"}, Category: "model",
	}
	tokenizeDecodeFlag = &cli.BoolFlag{
		Name: "decode", Usage: "read token ids separated by white space and print their text",
	}
)

var tokenizeCommand = &cli.Command{
	Name:      "tokenize",
	Usage:     "print the token ids of a file, or with --decode the text of ids",
	ArgsUsage: "[FILE]",
	Description: `Tokenizes FILE (standard input when FILE is missing or "-") with the Qwen2 byte-level BPE
and prints the ids on one line separated by spaces. The file's bytes are tokenized as plain
text: no chat template is applied and added tokens such as <|im_end|> written in the file are
tokenized as characters. Text is NFC-normalized first, as the model's tokenizer does.

With --decode, FILE (or standard input) holds token ids separated by white space, and the
command prints their text exactly, without adding a line break, so that
'dartc tokenize F | dartc tokenize --decode' reproduces F (NFC-normalized).`,
	Flags:  []cli.Flag{tokenizeDirFlag, tokenizeDecodeFlag},
	Action: runTokenize,
}

func runTokenize(c *cli.Context) error {
	if c.NArg() > 1 {
		return fmt.Errorf("tokenize: want at most one FILE, got %d arguments", c.NArg())
	}
	dir := c.String(tokenizeDirFlag.Name)
	if dir == "" {
		var err error
		if dir, err = tokenizer.DefaultDir(); err != nil {
			return fmt.Errorf("tokenize: %w", err)
		}
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return fmt.Errorf("tokenize: %w", err)
	}
	input, name, err := readInput(c.Args().First(), c.App.Reader)
	if err != nil {
		return fmt.Errorf("tokenize: %w", err)
	}
	out := bufio.NewWriter(c.App.Writer)
	if c.Bool(tokenizeDecodeFlag.Name) {
		ids, err := parseIDs(string(input), name)
		if err != nil {
			return fmt.Errorf("tokenize: --decode: %w", err)
		}
		text, err := tok.Decode(ids)
		if err != nil {
			return fmt.Errorf("tokenize: --decode %s: %w", name, err)
		}
		out.WriteString(text)
	} else {
		for i, id := range tok.Encode(string(input)) {
			if i > 0 {
				out.WriteByte(' ')
			}
			out.WriteString(strconv.Itoa(id))
		}
		out.WriteByte('\n')
	}
	return out.Flush()
}

func readInput(path string, stdin io.Reader) (data []byte, name string, err error) {
	if path == "" || path == "-" {
		if stdin == nil {
			stdin = os.Stdin
		}
		data, err = io.ReadAll(stdin)
		return data, "standard input", err
	}
	data, err = os.ReadFile(path)
	return data, path, err
}

func parseIDs(text, name string) ([]int, error) {
	fields := strings.Fields(text)
	ids := make([]int, len(fields))
	for i, f := range fields {
		id, err := strconv.Atoi(f)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("%s: word %d %q is not a token id (want non-negative integers separated by white space)", name, i+1, f)
		}
		ids[i] = id
	}
	return ids, nil
}
