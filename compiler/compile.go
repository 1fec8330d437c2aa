package compiler

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/internal/outpath"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/passes"
	"github.com/dartc/dartc/passes/kernels"
)

// ErrOutputExists reports an output directory that exists without Force.
var ErrOutputExists = errors.New("compiler: output directory exists")

// Options configure a compilation.
type Options struct {
	Targets []string // default passes.DefaultTargets
	Roles   []string // default reason, tool
	Rank    int      // default 16
	Alpha   float64  // default 32
	Seed    uint64   // adapter initialization
	Force   bool     // replace an existing output directory
	Check   bool     // ir.Check after every pass
	// CopyWeights copies the source's external data file into the output
	// directory instead of hard-linking it (some tools, onnx.checker among
	// them, refuse hard-linked data files).
	CopyWeights bool
	// Graphs selects what to emit: decode, logprobs, train (default all).
	// adamw.onnx comes with train.
	Graphs []string
	// Tokenizer is the directory of the model's tokenizer (tokenizer.json,
	// or vocab.json and merges.txt, with tokenizer_config.json); it is
	// copied into the output and recorded in the manifest. "" records none.
	Tokenizer string
	// MaxPositions is the model's context in tokens when the model does not
	// say (see maxPositions); 0: found from the graph or its config.
	MaxPositions int64
	// HeadChunk is the number of positions logprobs.onnx and train.onnx
	// project onto the vocabulary at a time (default
	// passes.DefaultHeadChunk): their peak memory is about a few
	// [HeadChunk, vocab] tensors.
	HeadChunk int
	// LogprobsEntropy adds the entropy output to logprobs.onnx (off: the
	// graph computes log-probs only).
	LogprobsEntropy bool
	// OnTempDir, when set, is told the temporary directory the output is
	// assembled in before anything is written there, so that a caller
	// that may exit without Compile returning (a signal) can remove it.
	OnTempDir func(dir string)
	// Precision is what the backbone computes in: fp32 (default), fp16 or
	// bf16 (passes.Precision); Provider (cuda, the default, or cpu) names
	// the kernel table that decides where the low type runs.
	Precision string
	Provider  string
	// ShareEmbedding holds a tied embedding (config.json:
	// tie_word_embeddings) once in logprobs.onnx and train.onnx and opens
	// them without ONNX Runtime's weight pre-packing, which would copy the
	// matrix again: less memory (0.8 GiB at 152k × 768), slower CPU steps
	// (every GEMM packs its weight). Refused for an untied model.
	ShareEmbedding bool
	// AttentionBlocks is the number of query blocks logprobs.onnx and
	// train.onnx cut each causal attention into, so that block i scores
	// only the keys its queries may see (passes.BlockCausalAttention);
	// 0: passes.DefaultAttentionBlocks, 1: the full [seq, seq] square.
	AttentionBlocks int
}

// repeatedKV keeps the exporter's repeated keys and values in the
// attention blocks (passes.Options.RepeatedKV): set by tests that compare.
var repeatedKV bool

// precisionTypes maps the --precision names to element types.
var precisionTypes = map[string]ir.DType{"fp32": ir.Float32, "fp16": ir.Float16, "bf16": ir.BFloat16, "fp64": ir.Float64}

func (o *Options) defaults() {
	if len(o.Targets) == 0 {
		o.Targets = passes.DefaultTargets
	}
	if len(o.Roles) == 0 {
		o.Roles = []string{"reason", "tool"}
	}
	if o.Rank == 0 {
		o.Rank = 16
	}
	if o.Alpha == 0 {
		o.Alpha = 32
	}
	if o.Precision == "" {
		o.Precision = "fp32"
	}
	if o.Provider == "" {
		o.Provider = kernels.CUDA
	}
	if len(o.Graphs) == 0 {
		o.Graphs = []string{manifest.GraphDecode, manifest.GraphLogprobs, manifest.GraphTrain}
	}
}

func (o *Options) validate() error {
	if o.Rank < 1 {
		return fmt.Errorf("compiler: rank %d: must be ≥ 1", o.Rank)
	}
	if !(o.Alpha > 0) || math.IsInf(o.Alpha, 1) {
		return fmt.Errorf("compiler: alpha %g: must be a finite number > 0", o.Alpha)
	}
	if o.HeadChunk < 0 {
		return fmt.Errorf("compiler: head chunk %d: must be ≥ 1 (0: the default %d)", o.HeadChunk, passes.DefaultHeadChunk)
	}
	if o.AttentionBlocks < 0 || o.AttentionBlocks > passes.MaxAttentionBlocks {
		return fmt.Errorf("compiler: attention blocks %d: must be 1 to %d (0: the default %d)", o.AttentionBlocks, passes.MaxAttentionBlocks, passes.DefaultAttentionBlocks)
	}
	if _, ok := precisionTypes[o.Precision]; !ok {
		return fmt.Errorf("compiler: precision %q: choose fp32, fp16, bf16 or fp64", o.Precision)
	}
	if _, err := kernels.For(o.Provider); err != nil {
		return fmt.Errorf("compiler: provider %q: choose cuda or cpu", o.Provider)
	}
	for _, g := range o.Graphs {
		if g != manifest.GraphDecode && g != manifest.GraphLogprobs && g != manifest.GraphTrain {
			return fmt.Errorf("compiler: unknown graph %q (choose from decode, logprobs, train)", g)
		}
	}
	if !slices.Contains(o.Graphs, manifest.GraphDecode) {
		return fmt.Errorf("compiler: --graphs must include decode: the runtime always needs it")
	}
	seen := map[string]bool{}
	for _, r := range o.Roles {
		if !regexp.MustCompile(`^[a-z][a-z0-9_]*$`).MatchString(r) {
			return fmt.Errorf("compiler: role %q: use lower-case letters, digits and _", r)
		}
		if seen[r] {
			return fmt.Errorf("compiler: role %q given twice", r)
		}
		seen[r] = true
	}
	return nil
}

// Compile compiles the model at src into the directory out.
func Compile(src, out string, opts Options) (*manifest.Manifest, error) {
	opts.defaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	if err := checkOutput(src, out, opts.Force); err != nil {
		return nil, err
	}
	raw, err := os.ReadFile(src)
	if err != nil {
		return nil, fmt.Errorf("compiler: %w", err)
	}
	absSrc, err := filepath.Abs(src)
	if err != nil {
		return nil, fmt.Errorf("compiler: %w", err)
	}
	if opts.ShareEmbedding {
		tied, from := tiedEmbeddings(absSrc)
		if !tied {
			where := "there is no config.json beside the model or in the folder above"
			if from != "" {
				where = from + " does not"
			}
			return nil, fmt.Errorf("compiler: --share-embedding needs the model's config.json to say \"tie_word_embeddings\": true (its lm_head is then its embedding matrix), but %s; compile without --share-embedding", where)
		}
	}
	parent := filepath.Dir(filepath.Clean(out))
	made, err := mkdirParents(parent)
	done := false
	defer func() {
		if !done { // the folders this compile made, deepest first, if still empty
			for _, d := range made {
				os.Remove(d)
			}
		}
	}()
	if err != nil {
		return nil, fmt.Errorf("compiler: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(out)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("compiler: %w", err)
	}
	defer func() {
		if !done {
			os.RemoveAll(tmp)
		}
	}()
	if opts.OnTempDir != nil {
		opts.OnTempDir(tmp)
	}

	sum := sha256.Sum256(raw)
	man := &manifest.Manifest{
		Format: manifest.Format,
		Source: manifest.Source{Path: absSrc, SHA256: hex.EncodeToString(sum[:]), Bytes: int64(len(raw))},
		Family: "qwen2",
		Tags: manifest.Tags{ToolOpen: "<search>", ToolClose: "</search>", ObsOpen: "<information>",
			ObsClose: "</information>", Answer: "answer"},
		Graphs:       map[string]*manifest.Graph{},
		AdaptersFile: "adapters.safetensors",
	}
	links := newLinker(tmp, opts.CopyWeights)

	popts := passes.Options{Targets: opts.Targets, Roles: opts.Roles, Rank: opts.Rank, Alpha: opts.Alpha,
		HeadChunk: opts.HeadChunk, LogprobsEntropy: opts.LogprobsEntropy,
		Precision: precisionTypes[opts.Precision], Provider: opts.Provider, AttentionBlocks: opts.AttentionBlocks, RepeatedKV: repeatedKV}
	popts.TiedEmbedding = opts.ShareEmbedding
	low := newLowWeights(tmp, popts.Precision)
	defer low.close()
	var s *passes.State // the decode pipeline's state: targets and adapters
	for _, gr := range []struct{ name, file, doc string }{
		{manifest.GraphDecode, "decode.onnx", "generation step: dual gated LoRA, KV cache, logits of the last position"},
		{manifest.GraphLogprobs, "logprobs.onnx", "whole sequences: per-token log-prob of the next token and entropy"},
		{manifest.GraphTrain, "train.onnx", "GRPO loss over whole sequences and its gradient with respect to every adapter"},
	} {
		// Each graph starts from a fresh parse: passes rewrite in place.
		m, err := ir.Parse(raw, absSrc)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(opts.Graphs, gr.name) {
			continue
		}
		st := passes.NewState(m, popts)
		if err := runPipeline(gr.name, st, opts.Check); err != nil {
			hint := ""
			if gr.name != manifest.GraphDecode {
				hint = " (compile with --graphs decode for a generation-only model)"
			}
			return nil, fmt.Errorf("compiler: %s graph: %w%s", gr.name, err, hint)
		}
		if err := ir.CheckModel(m); err != nil {
			return nil, fmt.Errorf("compiler: %s graph: %w", gr.name, err)
		}
		if err := low.place(m, st.ConvertedWeights, links); err != nil {
			return nil, err
		}
		m.Doc = "dartc " + gr.name + " graph: " + gr.doc + "; roles " + strings.Join(opts.Roles, ", ")
		m.ProducerName, m.ProducerVersion = "dartc", Version
		if err := ir.Save(m, filepath.Join(tmp, gr.file), ir.EmitOptions{Location: links.location}); err != nil {
			return nil, err
		}
		if links.err != nil {
			return nil, links.err
		}
		spec := graphSpec(gr.file, m.Graph)
		spec.SessionConfig = sessionConfig(m, st)
		man.Graphs[gr.name] = spec
		if gr.name == manifest.GraphDecode {
			s = st
			man.Opset, man.IRVersion = m.OpsetVersion(""), m.IRVersion
			man.Model = modelInfo(m.Graph, st.Targets)
			man.Model.MaxLength, man.Model.MaxLengthFrom = maxPositions(absSrc, m, opts.MaxPositions)
			if man.Model.MaxLength == 0 {
				slog.Warn("the model's maximum positions were not found (no rotary cache in the graph, no config.json with max_position_embeddings beside the model): prompts and rollouts are not bounded; pass --max-positions",
					"source", src)
			}
		}
	}
	if _, ok := man.Graphs[manifest.GraphTrain]; ok {
		var params []passes.AdamWParam
		for _, in := range s.AdapterInputs {
			dims := make([]int64, len(in.Type.Dims))
			for i, d := range in.Type.Dims {
				dims[i] = d.Value
			}
			params = append(params, passes.AdamWParam{Name: in.Name, DType: in.Type.DType, Dims: dims})
		}
		am, err := passes.BuildAdamW(params, passes.DefaultAdamWOpset)
		if err != nil {
			return nil, fmt.Errorf("compiler: adamw graph: %w", err)
		}
		passes.AnnotateGraphShapes(am.Graph)
		am.ProducerName, am.ProducerVersion = "dartc", Version
		if err := ir.Save(am, filepath.Join(tmp, "adamw.onnx"), ir.EmitOptions{}); err != nil {
			return nil, err
		}
		spec := graphSpec("adamw.onnx", am.Graph)
		// Element-wise arithmetic that ORT's optimizers do not speed up; on
		// its thousands of nodes they cost seconds at session creation.
		spec.Optimization = manifest.OptimizationNone
		man.Graphs[manifest.GraphAdamW] = spec
	}
	if err := low.close(); err != nil {
		return nil, err
	}
	man.Source.ExternalData = links.names()
	if opts.Precision != "fp32" {
		man.Precision = &manifest.Precision{DType: popts.Precision.String(), Provider: opts.Provider}
		if len(low.done) > 0 {
			man.Precision.WeightsFile = low.name
		}
	}
	if _, ok := man.Graphs[manifest.GraphTrain]; ok || man.Graphs[manifest.GraphLogprobs] != nil {
		man.HeadChunk = cmp.Or(opts.HeadChunk, passes.DefaultHeadChunk)
		man.AttentionBlocks = cmp.Or(opts.AttentionBlocks, passes.DefaultAttentionBlocks)
	}
	man.LoRA = manifest.LoRA{Rank: opts.Rank, Alpha: opts.Alpha, Scale: popts.Scale(), Roles: opts.Roles, RoleInput: passes.RoleInput}
	for _, t := range s.Targets {
		mt := manifest.Target{Module: t.Module, Layer: t.Layer, Kind: t.Kind, In: t.In, Out: t.Out, Form: t.Form,
			Node: t.Node.Name, A: map[string]string{}, B: map[string]string{}}
		for _, r := range opts.Roles {
			mt.A[r] = passes.AdapterName(t.Module, "A", r)
			mt.B[r] = passes.AdapterName(t.Module, "B", r)
		}
		man.LoRA.Targets = append(man.LoRA.Targets, mt)
	}

	if err := WriteInitialAdapters(filepath.Join(tmp, man.AdaptersFile), s, opts.Seed, absSrc); err != nil {
		return nil, err
	}
	if opts.Tokenizer != "" {
		if man.Tokenizer, err = copyTokenizer(opts.Tokenizer, tmp, man.Model.Vocab); err != nil {
			return nil, err
		}
	}
	if err := manifest.Write(tmp, man); err != nil {
		return nil, err
	}
	if err := syncDir(tmp); err != nil {
		return nil, err
	}
	if err := replaceDir(tmp, out, opts.Force); err != nil {
		return nil, err
	}
	done = true
	slog.Info("compiled", "source", src, "out", out, "targets", len(s.Targets), "rank", opts.Rank, "roles", strings.Join(opts.Roles, ","))
	return man, nil
}

// sessionConfig lists the ONNX Runtime settings a graph needs. Two of ORT
// 1.30's fusions mishandle float64 graphs (QuickGeluFusion emits a
// float-only node; SimplifiedLayerNormFusion loses precision), so float64
// graphs turn them off. A graph whose embedding table is the lm_head's
// weight (passes.TieEmbedding) runs without pre-packing: ORT packs a
// MatMul's constant weight into a buffer of its own, and the Gather needs
// the matrix as stored too, so pre-packed the one matrix would be held
// twice (docs/bench.md, "The tied embedding").
func sessionConfig(m *ir.Model, st *passes.State) map[string]string {
	var c map[string]string
	set := func(k, v string) {
		if c == nil {
			c = map[string]string{}
		}
		c[k] = v
	}
	for _, in := range m.Graph.Inputs {
		if in.Type != nil && in.Type.DType == ir.Float64 {
			set("optimization.disable_specified_optimizers", Float64DisabledOptimizers)
			break
		}
	}
	if st.SharedEmbedding {
		set(DisablePrepackingKey, "1")
	}
	return c
}

// DisablePrepackingKey is ONNX Runtime's session config entry that turns
// off the pre-packing of constant weights.
const DisablePrepackingKey = "session.disable_prepacking"

// Float64DisabledOptimizers are the ORT optimizers float64 graphs run without.
const Float64DisabledOptimizers = "QuickGeluFusion;SimplifiedLayerNormFusion"

// Version is written as the producer version of emitted graphs.
const Version = "0.1.0"

// graphSpec describes a graph's inputs and outputs for the manifest.
func graphSpec(file string, g *ir.Graph) *manifest.Graph {
	conv := func(vs []*ir.ValueInfo) []manifest.Tensor {
		var out []manifest.Tensor
		for _, v := range vs {
			t := manifest.Tensor{Name: v.Name, DType: v.Type.DType.String()}
			for _, d := range v.Type.Dims {
				if d.Param != "" {
					t.Dims = append(t.Dims, manifest.Dim{Param: d.Param})
				} else if d.Value >= 0 {
					t.Dims = append(t.Dims, manifest.Dim{Value: d.Value})
				} else {
					t.Dims = append(t.Dims, manifest.Dim{Param: "?"})
				}
			}
			out = append(out, t)
		}
		return out
	}
	return &manifest.Graph{File: file, Inputs: conv(g.Inputs), Outputs: conv(g.Outputs)}
}

var pastRe = regexp.MustCompile(`^past_key_values\.(\d+)\.key$`)

// modelInfo reads the architecture facts off the rewritten graph.
func modelInfo(g *ir.Graph, targets []*passes.Target) manifest.ModelInfo {
	var info manifest.ModelInfo
	for _, t := range targets {
		if t.Layer+1 > info.Layers {
			info.Layers = t.Layer + 1
		}
		if t.Kind == "q" || t.Kind == "qkv" {
			info.Hidden = t.In
		}
	}
	if lg := g.Output(passes.LogitsOutput); lg != nil {
		info.DType = lg.Type.DType.String()
		if d := lg.Type.Dims[2]; d.Known() {
			info.Vocab = d.Value
		}
	}
	var layers []int
	for _, in := range g.Inputs {
		if mm := pastRe.FindStringSubmatch(in.Name); mm != nil {
			l, _ := strconv.Atoi(mm[1])
			layers = append(layers, l)
			if d := in.Type.Dims; len(d) == 4 {
				info.KVHeads, info.HeadDim = d[1].Value, d[3].Value
			}
		}
	}
	sort.Ints(layers)
	for _, l := range layers {
		p := fmt.Sprintf("past_key_values.%d.", l)
		c := manifest.CacheLayer{PastKey: p + "key", PastValue: p + "value",
			PresentKey: fmt.Sprintf("present.%d.key", l), PresentValue: fmt.Sprintf("present.%d.value", l)}
		if g.Input(c.PastValue) != nil && g.Output(c.PresentKey) != nil && g.Output(c.PresentValue) != nil {
			info.Cache = append(info.Cache, c)
		}
	}
	return info
}

// linker gives each external data file of the source one link in the
// output directory, named after the file, and maps references to it.
type linker struct {
	dir   string
	copy  bool
	byAbs map[string]string
	err   error
}

func newLinker(dir string, copy bool) *linker {
	return &linker{dir: dir, copy: copy, byAbs: map[string]string{}}
}

func (l *linker) location(e *ir.External) string {
	if name, ok := l.byAbs[e.File]; ok {
		return name
	}
	if filepath.Dir(e.File) == filepath.Clean(l.dir) { // written here (converted weights)
		l.byAbs[e.File] = filepath.Base(e.File)
		return filepath.Base(e.File)
	}
	name := filepath.Base(e.File)
	for i := 1; l.taken(name); i++ {
		name = fmt.Sprintf("%d-%s", i, filepath.Base(e.File))
	}
	dst := filepath.Join(l.dir, name)
	// ONNX Runtime refuses external data that resolves outside the model's
	// folder, through ".." or a symbolic link alike: the data must be a
	// file in the output directory. A hard link costs nothing; across file
	// systems, or when asked, the file is copied.
	var err error
	if !l.copy {
		if err = os.Link(e.File, dst); err != nil {
			slog.Warn("cannot hard-link the weights, copying them", "file", e.File, "reason", err)
		}
	}
	if l.copy || err != nil {
		if err := copyFile(e.File, dst); err != nil && l.err == nil {
			l.err = fmt.Errorf("compiler: copy %s into the output directory: %w", e.File, err)
		}
	}
	l.byAbs[e.File] = name
	return name
}

// copyFile copies src to dst (sparse regions are written out).
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func (l *linker) taken(name string) bool {
	for _, n := range l.byAbs {
		if n == name {
			return true
		}
	}
	return false
}

func (l *linker) names() []string {
	var out []string
	for _, n := range l.byAbs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("compiler: %w", err)
	}
	defer f.Close()
	return f.Sync()
}

// checkOutput applies the --force rule (package outpath): out may be
// replaced only when it is an artifacts directory compile wrote (its
// manifest.json lists every entry) or an empty directory, and never when
// it holds the source model.
func checkOutput(src, out string, force bool) error {
	_, err := outpath.Dir(out, force, []string{src}, recogniseArtifacts)
	switch {
	case errors.Is(err, outpath.ErrExists):
		return fmt.Errorf("%w: %s (pass --force to replace it)", ErrOutputExists, out)
	case err != nil:
		return fmt.Errorf("compiler: %w", err)
	}
	return nil
}

// recogniseArtifacts accepts a directory whose manifest.json is a dartc
// artifacts manifest (any format version) naming every other entry.
func recogniseArtifacts(dir string, names []string) error {
	b, err := os.ReadFile(filepath.Join(dir, manifest.FileName))
	if err != nil {
		return errors.New("it has no readable manifest.json, so it is not a directory that compile wrote")
	}
	var m struct {
		Format string `json:"format"`
		Source struct {
			ExternalData []string `json:"external_data"`
		} `json:"source"`
		Graphs map[string]struct {
			File string `json:"file"`
		} `json:"graphs"`
		AdaptersFile string `json:"adapters_file"`
		Tokenizer    *struct {
			Dir   string   `json:"dir"`
			Files []string `json:"files"`
		} `json:"tokenizer"`
	}
	if err := json.Unmarshal(b, &m); err != nil || !strings.HasPrefix(m.Format, "dartc-artifacts/") {
		return errors.New("its manifest.json is not a dartc artifacts manifest")
	}
	known := map[string]bool{manifest.FileName: true, m.AdaptersFile: true}
	if tk := m.Tokenizer; tk != nil && tk.Dir != "" && !strings.ContainsAny(tk.Dir, `/\`) && tk.Dir != ".." {
		entries, err := os.ReadDir(filepath.Join(dir, tk.Dir))
		if err == nil {
			listed := map[string]bool{}
			for _, f := range tk.Files {
				listed[f] = true
			}
			for _, e := range entries {
				if !listed[e.Name()] {
					return fmt.Errorf("its %s folder holds %q, which its manifest.json does not list (move it out first)", tk.Dir, e.Name())
				}
			}
		}
		known[tk.Dir] = true
	}
	for _, g := range m.Graphs {
		known[g.File] = true
	}
	for _, f := range m.Source.ExternalData {
		known[f] = true
	}
	for _, n := range names {
		if !known[n] {
			return fmt.Errorf("it holds %q, which its manifest.json does not list (move it out first)", n)
		}
	}
	return nil
}

// replaceDir renames tmp to out; an existing out (allowed by force) is moved
// aside first and removed once the new one is in place.
func replaceDir(tmp, out string, force bool) error {
	if _, err := os.Stat(out); err == nil {
		if !force {
			return fmt.Errorf("%w: %s (pass --force to replace it)", ErrOutputExists, out)
		}
		old := tmp + ".old"
		if err := os.Rename(out, old); err != nil {
			return fmt.Errorf("compiler: %w", err)
		}
		if err := os.Rename(tmp, out); err != nil {
			os.Rename(old, out)
			return fmt.Errorf("compiler: %w", err)
		}
		return os.RemoveAll(old)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("compiler: %w", err)
	}
	return nil
}

// mkdirParents makes dir and its missing parents and returns the folders
// it made, deepest first, so that a failed compile can remove them again.
func mkdirParents(dir string) ([]string, error) {
	var made []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || d == filepath.Dir(d) {
			break
		}
		made = append(made, d)
	}
	return made, os.MkdirAll(dir, 0o755)
}
