// Command benchcmp compares dartc's compiled graphs with PyTorch eager on
// the same weights and batch (package benchcmp; make bench-compare runs it
// on a ~100M Qwen2-shaped model): a markdown table on stdout, one JSON line
// per row in -jsonl.
//
//	benchcmp -model COMPILED -checkpoint HF_DIR -python VENV/bin/python [-seqs 256,512] [-phases train,logprobs]
//	benchcmp worker    (the dartc worker: the protocol on stdin/stdout)
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"

	"github.com/dartc/dartc/benchcmp"
	"github.com/dartc/dartc/internal/flaglist"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		if err := benchcmp.Serve(os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "benchcmp worker:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("benchcmp", flag.ContinueOnError)
	fs.SetOutput(stderr)
	model := fs.String("model", "", "dartc's compiled directory (dartc compile -o)")
	ckpt := fs.String("checkpoint", "", "the Hugging Face checkpoint the model was exported from (PyTorch loads it)")
	label := fs.String("label", "", "the model's name in the output (default: the compiled directory's name)")
	rows := fs.Int("batch", 4, "batch size")
	seqs := fs.String("seqs", "256,512", "comma-separated sequence lengths")
	phases := fs.String("phases", "train,logprobs", "comma-separated: train, logprobs")
	warmup := fs.Int("warmup", 1, "untimed steps per side first")
	reps := fs.Int("reps", 3, "timed steps per side")
	threads := fs.Int("threads", goruntime.NumCPU(), "ONNX Runtime intra-op threads and torch threads")
	python := fs.String("python", "python3", "the Python with torch, transformers and peft (make bench-compare: .cache/venv-bench/bin/python)")
	worker := fs.String("torch-worker", "benchcmp/torch/worker.py", "the PyTorch worker script")
	lora := fs.String("lora", "peft", "the PyTorch LoRA: peft (PEFT's single LoRA), plain, or dual (dual gated, eager)")
	attn := fs.String("attn", "sdpa", "transformers' attention implementation (sdpa, eager)")
	seed := fs.Uint64("seed", 0, "batch and adapter seed")
	settle := fs.Duration("settle", 0, "pause before every step, so that neither side starts while the other's threads still spin")
	jsonl := fs.String("jsonl", "", "append one JSON line per result to this file")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("benchcmp: unexpected argument %q (flags only; `benchcmp worker` runs the dartc worker)", fs.Arg(0))
	}
	lens, err := parseInts(*seqs)
	if err != nil {
		return fmt.Errorf("benchcmp: -seqs %q: %v", *seqs, err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if *label == "" {
		*label = filepath.Base(filepath.Clean(*model))
	}
	cfg := benchcmp.Config{Model: *model, Checkpoint: *ckpt, Label: *label, Rows: *rows, Seqs: lens,
		Phases: flaglist.Split(*phases), Warmup: *warmup, Reps: *reps, Threads: *threads, Settle: *settle, Seed: *seed,
		TorchLoRA: *lora, Attn: *attn, DartcWorker: []string{self, "worker"}, TorchWorker: []string{*python, *worker}}
	if !*quiet {
		cfg.Log = stderr
	}
	var out io.Writer = io.Discard
	if *jsonl != "" {
		f, err := os.OpenFile(*jsonl, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return fmt.Errorf("benchcmp: -jsonl: %w", err)
		}
		defer f.Close()
		out = f
	}
	fmt.Fprint(stdout, benchcmp.Header(cfg, goruntime.NumCPU()))
	var table strings.Builder
	table.WriteString(benchcmp.TableHeader())
	_, err = benchcmp.Compare(cfg, func(r benchcmp.Result) error {
		table.WriteString(benchcmp.Row(r))
		return benchcmp.WriteJSONL(out, r)
	})
	fmt.Fprint(stdout, "\n"+table.String())
	return err
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range flaglist.Split(s) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no lengths")
	}
	return out, nil
}
