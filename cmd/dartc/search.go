package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/dartc/dartc/internal/outpath"
	"github.com/dartc/dartc/retrieval"
	"github.com/dartc/dartc/retrieval/bm25"
	"github.com/dartc/dartc/retrieval/connect"
	"github.com/dartc/dartc/retrieval/corpus"
	"github.com/dartc/dartc/retrieval/httpretrieve"
	"github.com/schollz/progressbar/v3"
	"github.com/urfave/cli/v2"
)

func init() { register(searchCommand) }

var (
	searchCorpusFlag = &cli.StringFlag{
		Name: "corpus", Usage: "corpus JSONL file, one passage per line", Required: true,
		EnvVars: []string{"DARTC_CORPUS"},
	}
	searchOutputFlag = &cli.StringFlag{
		Name: "output", Aliases: []string{"o"}, Usage: "index file to write", Required: true,
	}
	searchFormatFlag = &cli.StringFlag{
		Name: "format", Value: string(corpus.FlashRAG),
		Usage:   `corpus rows: "flashrag" for {"id","contents"}, "title-text" for {"title","text"}`,
		EnvVars: []string{"DARTC_CORPUS_FORMAT"},
	}
	searchK1Flag    = &cli.Float64Flag{Name: "k1", Value: bm25.DefaultParams.K1, Usage: "BM25 term-frequency saturation"}
	searchBFlag     = &cli.Float64Flag{Name: "b", Value: bm25.DefaultParams.B, Usage: "BM25 length normalization"}
	searchIndexFlag = &cli.StringFlag{
		Name: "index", Usage: "BM25 index file, or the URL of a /retrieve server (http://host:port/retrieve)",
		Required: true, EnvVars: []string{"DARTC_INDEX"},
	}
	searchForceFlag  = &cli.BoolFlag{Name: "force", Usage: "replace an existing index file (only a BM25 index, never another file)"}
	searchTopKFlag   = &cli.IntFlag{Name: "topk", Value: 3, Usage: "passages per query"}
	searchScoresFlag = &cli.BoolFlag{
		Name: "scores", Usage: "print rank, score, id and title instead of the agent's observation text",
	}
	searchAddrFlag = &cli.StringFlag{
		Name: "addr", Value: "127.0.0.1:8000", Usage: "address to listen on", EnvVars: []string{"DARTC_SEARCH_ADDR"},
	}
	searchMaxTopKFlag    = &cli.IntFlag{Name: "max-topk", Value: 1000, Usage: "largest topk a request may ask for"}
	searchMaxResultsFlag = &cli.IntFlag{Name: "max-results", Value: 16384, Usage: "most passages one request may ask for (queries × topk)"}
	searchMaxBodyFlag    = &cli.Int64Flag{Name: "max-body", Value: 4 << 20, Usage: "request body limit in bytes"}
	searchMaxQueryFlag   = &cli.IntFlag{
		Name: "max-query-bytes", Value: httpretrieve.DefaultMaxQueryBytes, Usage: "longest query in bytes; a request with a longer one gets a 400",
	}
	searchTimeoutFlag = &cli.DurationFlag{
		Name: "timeout", Value: httpretrieve.DefaultTimeout, Usage: "most time one request may take; past it the server answers 503",
	}
)

// serveOptions reads the serve limits. Every flag must be positive: the
// library reads 0 as "the default", which would turn --max-topk 0 into
// 1000 without a word.
func serveOptions(c *cli.Context) (httpretrieve.ServerOptions, error) {
	for _, f := range []struct {
		name string
		v    int64
	}{
		{searchTopKFlag.Name, int64(c.Int(searchTopKFlag.Name))},
		{searchMaxTopKFlag.Name, int64(c.Int(searchMaxTopKFlag.Name))},
		{searchMaxResultsFlag.Name, int64(c.Int(searchMaxResultsFlag.Name))},
		{searchMaxBodyFlag.Name, c.Int64(searchMaxBodyFlag.Name)},
		{searchMaxQueryFlag.Name, int64(c.Int(searchMaxQueryFlag.Name))},
		{searchTimeoutFlag.Name, int64(c.Duration(searchTimeoutFlag.Name))},
	} {
		if f.v <= 0 {
			return httpretrieve.ServerOptions{}, fmt.Errorf("search serve: --%s is %v: want a positive value", f.name, c.Value(f.name))
		}
	}
	opts := httpretrieve.ServerOptions{
		DefaultTopK: c.Int(searchTopKFlag.Name), MaxTopK: c.Int(searchMaxTopKFlag.Name),
		MaxResults: c.Int(searchMaxResultsFlag.Name), MaxBodyBytes: c.Int64(searchMaxBodyFlag.Name),
		MaxQueryBytes: c.Int(searchMaxQueryFlag.Name), Timeout: c.Duration(searchTimeoutFlag.Name),
		Logger: slog.Default(),
	}
	if err := opts.Check(); err != nil {
		return opts, fmt.Errorf("search serve: %w", err)
	}
	return opts, nil
}

var searchCommand = &cli.Command{
	Name:  "search",
	Usage: "build, query and serve the retriever the agent calls",
	Description: `The agent's search engine: a built-in BM25 index (Pyserini's k1 = 0.9, b = 0.4), or any server
speaking Search-R1's POST /retrieve protocol (its e5 + FAISS retrieval_server.py, or dartc search serve).`,
	Subcommands: []*cli.Command{searchIndexCommand, searchQueryCommand, searchServeCommand},
}

var searchIndexCommand = &cli.Command{
	Name:      "index",
	Usage:     "build a BM25 index from a FlashRAG / Search-R1 JSONL corpus",
	ArgsUsage: " ",
	Flags:     []cli.Flag{searchCorpusFlag, searchOutputFlag, searchFormatFlag, searchK1Flag, searchBFlag, searchForceFlag},
	Action: func(c *cli.Context) error {
		format, err := corpus.ParseFormat(c.String(searchFormatFlag.Name))
		if err != nil {
			return err
		}
		path := c.String(searchCorpusFlag.Name)
		out := c.String(searchOutputFlag.Name)
		if _, err := outpath.File(out, c.Bool(searchForceFlag.Name), []string{path}, bm25.Recognise); err != nil {
			return fmt.Errorf("search index: %w", err)
		}
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("search index: %w", err)
		}
		defer f.Close()
		info, err := f.Stat()
		if err != nil {
			return fmt.Errorf("search index: %w", err)
		}
		barOut := progressWriter()
		if barOut == nil {
			barOut = io.Discard
		}
		bar := progressbar.NewOptions64(info.Size(),
			progressbar.OptionSetWriter(barOut),
			progressbar.OptionSetDescription("indexing"),
			progressbar.OptionShowBytes(true),
			progressbar.OptionThrottle(200*time.Millisecond),
			progressbar.OptionOnCompletion(func() { fmt.Fprintln(barOut) }),
		)
		pr := progressbar.NewReader(f, bar)
		rows, err := corpus.NewReader(&pr, format)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
		defer stop()
		start := time.Now()
		stats, err := bm25.Build(ctx, rows, out, bm25.Params{K1: c.Float64(searchK1Flag.Name), B: c.Float64(searchBFlag.Name)})
		if err != nil {
			return err
		}
		bar.Finish()
		secs := time.Since(start).Seconds()
		fmt.Fprintf(c.App.Writer, "indexed %d passages (%d terms, %d tokens) into %s: %.1f MB in %.1fs, %.0f passages/s\n",
			stats.Passages, stats.Terms, stats.TotalTokens, out, float64(stats.Bytes)/1e6, secs, float64(stats.Passages)/secs)
		return nil
	},
}

var searchQueryCommand = &cli.Command{
	Name:      "query",
	Usage:     "search an index or a /retrieve server and print what the agent would see",
	ArgsUsage: "TEXT",
	Flags:     []cli.Flag{searchIndexFlag, searchTopKFlag, searchScoresFlag},
	Action: func(c *cli.Context) error {
		text := strings.TrimSpace(strings.Join(c.Args().Slice(), " "))
		if text == "" {
			return errors.New("search query: give the query text as arguments, e.g. dartc search query --index wiki.bm25 who wrote hamlet")
		}
		s, err := connect.Open(c.String(searchIndexFlag.Name), httpretrieve.ClientOptions{})
		if err != nil {
			return err
		}
		res, err := s.Search(c.Context, []string{text}, c.Int(searchTopKFlag.Name))
		if err != nil {
			return err
		}
		if !c.Bool(searchScoresFlag.Name) {
			fmt.Fprint(c.App.Writer, retrieval.FormatObservation(res[0]))
			return nil
		}
		for i, p := range res[0] {
			title, _ := retrieval.SplitTitle(p.Contents)
			fmt.Fprintf(c.App.Writer, "%d\t%.6f\t%s\t%s\n", i+1, p.Score, p.ID, title)
		}
		return nil
	},
}

var searchServeCommand = &cli.Command{
	Name:      "serve",
	Usage:     "serve an index over Search-R1's POST /retrieve protocol",
	ArgsUsage: " ",
	Description: `Answers POST /retrieve with {"queries": [...], "topk": k, "return_scores": bool}, exactly as
Search-R1's retrieval_server.py does, logs every request, and stops gracefully on SIGINT or SIGTERM.`,
	Flags: []cli.Flag{searchIndexFlag, searchAddrFlag, searchTopKFlag, searchMaxTopKFlag, searchMaxResultsFlag, searchMaxBodyFlag,
		searchMaxQueryFlag, searchTimeoutFlag},
	Action: func(c *cli.Context) error {
		opts, err := serveOptions(c) // before opening a large index
		if err != nil {
			return err
		}
		spec := c.String(searchIndexFlag.Name)
		s, err := connect.Open(spec, httpretrieve.ClientOptions{})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", c.String(searchAddrFlag.Name))
		if err != nil {
			return fmt.Errorf("search serve: %w", err)
		}
		h := httpretrieve.NewHandler(s, opts)
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		attrs := []any{"addr", "http://" + ln.Addr().String() + "/retrieve", "index", spec}
		if ix, ok := s.(*bm25.Index); ok {
			attrs = append(attrs, "passages", ix.Len())
		}
		slog.Info("serving", attrs...)
		if err := httpretrieve.Serve(ctx, ln, h, 30*time.Second); err != nil {
			return err
		}
		slog.Info("stopped")
		return nil
	},
}
