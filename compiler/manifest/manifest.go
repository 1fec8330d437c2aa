package manifest

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/dartc/dartc/internal/jsonerr"
	"github.com/dartc/dartc/passes/names"
)

// FileName is the manifest's name inside a compiled directory.
const FileName = "manifest.json"

// Format identifies this manifest schema; it changes when the schema does.
const Format = "dartc-artifacts/1"

// Outputs of decode.onnx beyond the export's own: the greedy choice, so
// that greedy decoding needs no vocabulary-sized tensor in Go.
// The names belong to the pass that creates them (passes' greedy-outputs).
const (
	NextTokenOutput   = names.NextToken
	NextLogprobOutput = names.NextLogprob
)

// Graph names used as keys of Manifest.Graphs.
const (
	GraphDecode   = "decode"
	GraphLogprobs = "logprobs"
	GraphTrain    = "train"
	GraphAdamW    = "adamw"
)

// Manifest is the content of manifest.json.
type Manifest struct {
	Format string `json:"format"`
	// Source is the model the artifacts were compiled from.
	Source Source `json:"source"`
	// Family is the model family ("qwen2").
	Family string `json:"family"`
	// Model holds the architecture facts the runtime needs.
	Model ModelInfo `json:"model"`
	// LoRA describes the dual gated LoRA rewrite.
	LoRA LoRA `json:"lora"`
	// Tags are the strings the router and the agent loop key on.
	Tags Tags `json:"tags"`
	// Opset and IRVersion of the emitted graphs (default domain).
	Opset     int64 `json:"opset"`
	IRVersion int64 `json:"ir_version"`
	// Graphs maps a graph name (decode, logprobs, train, adamw) to its spec.
	Graphs map[string]*Graph `json:"graphs"`
	// AdaptersFile is the initial adapters file, relative to the directory.
	AdaptersFile string `json:"adapters_file"`
	// HeadChunk is the number of positions logprobs.onnx and train.onnx
	// project onto the vocabulary at a time; 0 in manifests written before
	// the heads were chunked (their graphs hold [batch, seq, vocab] tensors).
	HeadChunk int `json:"head_chunk,omitempty"`
	// AttentionBlocks is the number of query blocks logprobs.onnx and
	// train.onnx cut each causal attention into; 0 in manifests written
	// before the blocks (the full square, as 1).
	AttentionBlocks int `json:"attention_blocks,omitempty"`
	// Tokenizer is the tokenizer the model belongs to, copied into the
	// directory; nil when none was given at compile time (the runtime then
	// uses the Qwen2 tokenizer).
	Tokenizer *Tokenizer `json:"tokenizer,omitempty"`
	// Precision is the type the backbone computes in (float16, bfloat16)
	// and the provider whose kernels decided where ("" : float32 throughout).
	Precision *Precision `json:"precision,omitempty"`
}

// Precision records a mixed-precision compilation: graph inputs and
// outputs stay float32, the backbone's weights are stored in DType.
type Precision struct {
	DType       string `json:"dtype"`
	Provider    string `json:"provider"`
	WeightsFile string `json:"weights_file,omitempty"` // the converted external weights, when the source had any
}

// Tokenizer records the compiled model's tokenizer.
type Tokenizer struct {
	Dir    string   `json:"dir"`    // relative to the compiled directory
	Files  []string `json:"files"`  // tokenizer.json, tokenizer_config.json, …
	SHA256 string   `json:"sha256"` // tokenizer.Digest of Dir
	Vocab  int      `json:"vocab"`  // ids the tokenizer uses (≤ Model.Vocab)
	// Source is the directory the tokenizer was copied from.
	Source string `json:"source"`
}

// TokenizerDir is where Compile puts the tokenizer in a compiled directory.
const TokenizerDir = "tokenizer"

// Source identifies the compiled model file.
type Source struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Bytes  int64  `json:"bytes"`
	// ExternalData lists the source's external data files, relative to the
	// compiled directory, that the emitted graphs reference.
	ExternalData []string `json:"external_data,omitempty"`
}

// ModelInfo holds architecture facts read off the source graph.
type ModelInfo struct {
	Layers  int    `json:"layers"`
	Vocab   int64  `json:"vocab"`
	Hidden  int64  `json:"hidden"`
	KVHeads int64  `json:"kv_heads"`
	HeadDim int64  `json:"head_dim"`
	DType   string `json:"dtype"` // activations and logits: float32, float64, float16
	// MaxLength is the context in tokens (the model's maximum positions);
	// 0 when unknown. MaxLengthFrom says where compile found it.
	MaxLength     int64  `json:"max_length,omitempty"`
	MaxLengthFrom string `json:"max_length_from,omitempty"`
	// Cache names the KV-cache inputs and outputs of decode.onnx, one entry
	// per layer; empty when the source has no cache.
	Cache []CacheLayer `json:"cache,omitempty"`
}

// CacheLayer names one layer's past and present key/value tensors, shaped
// [batch, kv_heads, length, head_dim].
type CacheLayer struct {
	PastKey      string `json:"past_key"`
	PastValue    string `json:"past_value"`
	PresentKey   string `json:"present_key"`
	PresentValue string `json:"present_value"`
}

// LoRA describes the adapters.
type LoRA struct {
	Rank  int      `json:"rank"`
	Alpha float64  `json:"alpha"`
	Scale float64  `json:"scale"` // alpha / rank
	Roles []string `json:"roles"` // role k is selected where role_ids == k
	// RoleInput is the int64 [batch, seq] input that carries the roles.
	RoleInput string `json:"role_input"`
	// Targets lists every rewritten linear, in graph order.
	Targets []Target `json:"targets"`
}

// Target is one rewritten linear layer and its adapter tensors.
type Target struct {
	Module string `json:"module"` // e.g. model.layers.0.self_attn.q_proj
	Layer  int    `json:"layer"`
	Kind   string `json:"kind"` // q, k, v, o, gate, up, down, qkv
	In     int64  `json:"in"`
	Out    int64  `json:"out"`
	Form   string `json:"form"` // matmul, matmul-transpose, gemm
	Node   string `json:"node"` // the source node name
	// A and B map a role name to the adapter input names, A [in, rank] and
	// B [rank, out].
	A map[string]string `json:"a"`
	B map[string]string `json:"b"`
}

// Tags are the text markers of the Search-R1 protocol.
type Tags struct {
	ToolOpen  string `json:"tool_open"`  // <search>
	ToolClose string `json:"tool_close"` // </search>
	ObsOpen   string `json:"obs_open"`   // <information>
	ObsClose  string `json:"obs_close"`  // </information>
	Answer    string `json:"answer"`     // answer
}

// Graph is one emitted graph.
type Graph struct {
	File    string   `json:"file"`
	Inputs  []Tensor `json:"inputs"`
	Outputs []Tensor `json:"outputs"`
	// SessionConfig lists ONNX Runtime session config entries the graph must
	// run with (for example optimizers to disable).
	SessionConfig map[string]string `json:"session_config,omitempty"`
	// Optimization is the ONNX Runtime graph optimization level the graph
	// is opened with: "" for ORT's default (all), or OptimizationNone for
	// a graph that ORT's optimizers do not speed up but take seconds to
	// open (adamw.onnx).
	Optimization string `json:"ort_optimization,omitempty"`
}

// OptimizationNone turns ONNX Runtime's graph optimizations off
// (Graph.Optimization).
const OptimizationNone = "disable_all"

// Tensor is a graph input or output. Dims hold a number, or a symbolic
// name such as "batch", "seq" or "past".
type Tensor struct {
	Name  string `json:"name"`
	DType string `json:"dtype"`
	Dims  []Dim  `json:"dims"`
}

// Dim is a fixed size (Value ≥ 0) or a symbol (Param).
type Dim struct {
	Value int64  `json:"value,omitempty"`
	Param string `json:"param,omitempty"`
}

// MarshalJSON writes a dim as a number or a string.
func (d Dim) MarshalJSON() ([]byte, error) {
	if d.Param != "" {
		return json.Marshal(d.Param)
	}
	return json.Marshal(d.Value)
}

// UnmarshalJSON reads a dim written by MarshalJSON.
func (d *Dim) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &d.Param)
	}
	return json.Unmarshal(b, &d.Value)
}

// Input returns the named input of g, or nil.
func (g *Graph) Input(name string) *Tensor {
	for i := range g.Inputs {
		if g.Inputs[i].Name == name {
			return &g.Inputs[i]
		}
	}
	return nil
}

// Output returns the named output of g, or nil.
func (g *Graph) Output(name string) *Tensor {
	for i := range g.Outputs {
		if g.Outputs[i].Name == name {
			return &g.Outputs[i]
		}
	}
	return nil
}

// AdapterNames returns every adapter input name in target order: for each
// target, A then B of each role in role order.
func (m *Manifest) AdapterNames() []string {
	var names []string
	for _, t := range m.LoRA.Targets {
		for _, r := range m.LoRA.Roles {
			names = append(names, t.A[r], t.B[r])
		}
	}
	return names
}

// Read loads dir/manifest.json.
func Read(dir string) (*Manifest, error) {
	path := filepath.Join(dir, FileName)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w (is %s a directory written by `dartc compile`?)", err, dir)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest: parse %s: %w", path, jsonerr.Describe(err))
	}
	if m.Format != Format {
		return nil, fmt.Errorf("manifest: %s has format %q, this dartc reads %q: recompile the model", path, m.Format, Format)
	}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("manifest: %s: %w (it was not written by dartc compile, or was edited: recompile the model)", path, err)
	}
	// Directories compiled before ort_optimization was recorded: their
	// adamw.onnx is the same element-wise graph, which the trainer always
	// opened without ORT's optimizations (with them it takes seconds).
	if g := m.Graphs[GraphAdamW]; g != nil && g.Optimization == "" {
		g.Optimization = OptimizationNone
	}
	return &m, nil
}

// check refuses what compile never writes and the runtime must not follow:
// a file name that is not a plain name in the directory (../model.onnx,
// /etc/x), a missing graph, negative sizes.
func (m *Manifest) check() error {
	plain := func(what, name string) error {
		if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `/\`) {
			return fmt.Errorf("%s %q is not a file name inside the directory", what, name)
		}
		return nil
	}
	if len(m.Graphs) == 0 {
		return errors.New("no graphs")
	}
	for name, g := range m.Graphs {
		if g == nil {
			return fmt.Errorf("graph %q is empty", name)
		}
		if err := plain("graph "+name+" file", g.File); err != nil {
			return err
		}
		for _, ts := range [][]Tensor{g.Inputs, g.Outputs} {
			for _, t := range ts {
				for _, d := range t.Dims {
					if d.Param == "" && d.Value < 0 {
						return fmt.Errorf("graph %q tensor %q has a negative dimension", name, t.Name)
					}
				}
			}
		}
	}
	if err := plain("adapters_file", m.AdaptersFile); err != nil {
		return err
	}
	for _, f := range m.Source.ExternalData {
		if err := plain("external data", f); err != nil {
			return err
		}
	}
	if m.Tokenizer != nil {
		if err := plain("tokenizer dir", m.Tokenizer.Dir); err != nil {
			return err
		}
		for _, f := range m.Tokenizer.Files {
			if err := plain("tokenizer file", f); err != nil {
				return err
			}
		}
	}
	mi := m.Model
	for _, v := range []struct {
		name string
		n    int64
	}{{"layers", int64(mi.Layers)}, {"vocab", mi.Vocab}, {"hidden", mi.Hidden}, {"kv_heads", mi.KVHeads},
		{"head_dim", mi.HeadDim}, {"max_length", mi.MaxLength}, {"lora rank", int64(m.LoRA.Rank)}} {
		if v.n < 0 {
			return fmt.Errorf("%s is %d", v.name, v.n)
		}
	}
	return nil
}

// Write writes m as dir/manifest.json (indented, stable key order).
func Write(dir string, m *Manifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, FileName), append(b, '\n'), 0o644)
}

// Inputs and outputs of decode.onnx's in-graph sampler (passes'
// sample-outputs): sampled decoding needs no vocabulary-sized tensor in Go.
const (
	SampleTemperatureInput = names.SampleTemperature
	SampleTopKInput        = names.SampleTopK
	SampleTopPInput        = names.SampleTopP
	SampleUniformInput     = names.SampleUniform
	SampleTokenOutput      = names.SampleToken
	SampleLogprobOutput    = names.SampleLogprob
	SampleAcceptedOutput   = names.SampleAccepted
)
