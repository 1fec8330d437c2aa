package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dartc/dartc/compiler"
	"github.com/dartc/dartc/internal/flaglist"
	"github.com/dartc/dartc/models/tokenizer"
	"github.com/dartc/dartc/passes"
	"github.com/urfave/cli/v2"
)

func init() { register(compileCommand) }

var compileCommand = &cli.Command{
	Name:      "compile",
	Usage:     "rewrite an exported Qwen2 ONNX model into dual-LoRA graphs",
	ArgsUsage: "MODEL.onnx",
	Description: `Reads MODEL.onnx (and its external data, without reading the weight bytes), matches
the target linears (q, k, v, o, gate, up, down projections, in the TorchScript, dynamo,
Gemm and packed-qkv forms), rewrites each into frozen W plus one gated LoRA branch per
role keyed by the int64 [batch, seq] input role_ids, and writes the artifacts directory:

  decode.onnx            generation step, KV cache kept, logits of the last position
  logprobs.onnx          whole sequences: log-prob of each next token (and entropy
                         with --logprobs-entropy)
  train.onnx             GRPO loss and its gradient for every adapter (generated here,
                         in standard ONNX ops: runs on any ONNX Runtime build)
  adamw.onnx             one AdamW step over all adapters with global grad-norm clipping
  adapters.safetensors   initial adapters (A Kaiming-uniform as PEFT, B zero)
  manifest.json          every graph's inputs and outputs, targets, roles, tags
  tokenizer/             the model's tokenizer (--tokenizer, or the one beside MODEL.onnx),
                         which the agent, train and eval then use

The directory is written atomically. Weights stay in the source's external data file,
which the directory hard-links (ONNX Runtime accepts no data file outside the model's
folder, through ".." or a symbolic link); --copy-weights copies it instead, as happens
anyway across file systems.`,
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "output directory", Required: true},
		&cli.IntFlag{Name: "rank", Value: 16, Usage: "LoRA rank r"},
		&cli.Float64Flag{Name: "alpha", Value: 32, Usage: "LoRA alpha; the branch scale is alpha / rank"},
		&cli.StringFlag{Name: "targets", Value: "q,k,v,o,gate,up,down", Usage: "comma-separated projections to adapt"},
		&cli.StringFlag{Name: "roles", Value: "reason,tool", Usage: "comma-separated role names; role k serves positions with role_ids == k"},
		&cli.Uint64Flag{Name: "seed", Value: 0, Usage: "seed of the initial adapters"},
		&cli.BoolFlag{Name: "force", Usage: "replace an existing artifacts directory (only one compile wrote, or an empty one)"},
		&cli.Int64Flag{Name: "max-positions", Usage: "the model's context in tokens, when neither the graph (rotary or static cache) nor config.json beside the model says (default: found)"},
		&cli.BoolFlag{Name: "check", Usage: "check the graph invariants after every pass"},
		&cli.BoolFlag{Name: "copy-weights", Usage: "copy the external weights file into DIR instead of hard-linking it (for tools that refuse hard links, such as onnx.checker)"},
		&cli.StringFlag{Name: "tokenizer", Usage: "the model's tokenizer directory, copied into DIR and recorded in the manifest (default: MODEL.onnx's directory when it holds tokenizer.json or vocab.json + merges.txt; none otherwise, and the runtime uses the Qwen2 tokenizer)"},
		&cli.StringFlag{Name: "graphs", Value: "decode,logprobs,train", Usage: "graphs to emit (train brings adamw.onnx); decode alone for generation-only models"},
		&cli.IntFlag{Name: "head-chunk", Value: 128, Usage: "positions logprobs.onnx and train.onnx project onto the vocabulary at a time (their peak memory is a few [chunk, vocab] tensors)"},
		&cli.BoolFlag{Name: "share-embedding", Usage: "hold a tied embedding (config.json: tie_word_embeddings) once in logprobs.onnx and train.onnx and open them without ONNX Runtime's weight pre-packing: less memory (0.8 GiB at a 152k × 768 embedding), slower CPU steps (about 1.09× on a 100M model); refused for untied models"},
		&cli.IntFlag{Name: "attention-blocks", Value: passes.DefaultAttentionBlocks, Usage: "query blocks logprobs.onnx and train.onnx cut each causal attention into; block i scores only the keys its queries may see ((n+1)/2n of the [seq, seq] square); 1: the full square"},
		&cli.BoolFlag{Name: "logprobs-entropy", Usage: "add the per-token entropy output to logprobs.onnx (off: log-probs only)"},
		&cli.StringFlag{Name: "precision", Value: "fp32", Usage: "what the backbone computes in: fp32, fp16 or bf16 (weights converted to a new data file; norm statistics, softmax, the loss head and the sampler stay fp32; graph inputs and outputs, adapters and their gradients stay fp32); fp64 widens the whole model to float64 (inputs, outputs and adapters too) for dartc gradcheck's precise check"},
		&cli.StringFlag{Name: "provider", Value: "cuda", Usage: "execution provider whose kernel table decides where fp16/bf16 runs: cuda or cpu (ONNX Runtime 1.30)"},
	},
	Action: func(c *cli.Context) error {
		if c.NArg() != 1 {
			return fmt.Errorf("compile: want one MODEL.onnx argument, got %d", c.NArg())
		}
		tok := c.String("tokenizer")
		if tok == "" && len(tokenizer.Files(filepath.Dir(c.Args().First()))) > 0 {
			tok = filepath.Dir(c.Args().First())
		}
		// The library reads zero as "default"; on the command line it is a mistake.
		if r := c.Int("rank"); r < 1 {
			return fmt.Errorf("compile: --rank %d: the LoRA rank must be ≥ 1 (default 16)", r)
		}
		if a := c.Float64("alpha"); !(a > 0) {
			return fmt.Errorf("compile: --alpha %g: must be > 0 (default 32; the branch scale is alpha / rank)", a)
		}
		if c.IsSet("max-positions") && c.Int64("max-positions") < 1 {
			return fmt.Errorf("compile: --max-positions %d: must be ≥ 1", c.Int64("max-positions"))
		}
		// A signal ends compile at once (it is not graceful): the
		// half-written temporary directory goes with it.
		var forget func()
		defer func() {
			if forget != nil {
				forget()
			}
		}()
		man, err := compiler.Compile(c.Args().First(), c.String("out"), compiler.Options{
			OnTempDir:       func(dir string) { forget = atInterrupt(func() { removeWhileWritten(dir) }) },
			Tokenizer:       tok,
			Targets:         flaglist.Split(c.String("targets")),
			Roles:           flaglist.Split(c.String("roles")),
			Rank:            c.Int("rank"),
			Alpha:           c.Float64("alpha"),
			Seed:            c.Uint64("seed"),
			Force:           c.Bool("force"),
			Check:           c.Bool("check"),
			Graphs:          flaglist.Split(c.String("graphs")),
			CopyWeights:     c.Bool("copy-weights"),
			MaxPositions:    c.Int64("max-positions"),
			HeadChunk:       c.Int("head-chunk"),
			AttentionBlocks: c.Int("attention-blocks"),
			ShareEmbedding:  c.Bool("share-embedding"),

			LogprobsEntropy: c.Bool("logprobs-entropy"),
			Precision:       c.String("precision"),
			Provider:        c.String("provider"),
		})
		if err != nil {
			return err
		}
		if man.Tokenizer != nil {
			fmt.Fprintf(c.App.Writer, "tokenizer %s (%d ids, sha256 %.12s) copied into %s\n", man.Tokenizer.Source, man.Tokenizer.Vocab, man.Tokenizer.SHA256, filepath.Join(c.String("out"), man.Tokenizer.Dir))
		}
		fmt.Fprintf(c.App.Writer, "compiled %d targets over %d layers (rank %d, roles %s) into %s\n",
			len(man.LoRA.Targets), man.Model.Layers, man.LoRA.Rank, strings.Join(man.LoRA.Roles, ","), c.String("out"))
		for name, g := range man.Graphs {
			fmt.Fprintf(c.App.Writer, "  %-8s %s (%d inputs, %d outputs)\n", name, g.File, len(g.Inputs), len(g.Outputs))
		}
		if man.Model.MaxLength > 0 {
			fmt.Fprintf(c.App.Writer, "  context  %d tokens (%s)\n", man.Model.MaxLength, man.Model.MaxLengthFrom)
		} else {
			fmt.Fprintf(c.App.Writer, "  context  unknown: prompts and rollouts are not bounded (pass --max-positions)\n")
		}
		return nil
	},
}

// removeWhileWritten removes dir, which the compile may still be writing
// into: a file created while RemoveAll walks leaves the directory non-empty,
// so it tries again.
func removeWhileWritten(dir string) {
	for range 5 {
		if os.RemoveAll(dir) == nil {
			if _, err := os.Stat(dir); os.IsNotExist(err) {
				return
			}
		}
	}
}
