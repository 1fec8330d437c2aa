package peft

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/dartc/dartc/safetensors"
)

// File names PEFT looks for in an adapter directory.
const (
	ConfigFile  = "adapter_config.json"
	WeightsFile = "adapter_model.safetensors"
)

// Metadata keys of dartc's adapters.safetensors.
const (
	MetaRank      = "rank"
	MetaAlpha     = "alpha"
	MetaRoles     = "roles"
	MetaBaseModel = "base_model"
)

// ErrOutputExists is returned when the output directory exists and is not empty.
var ErrOutputExists = errors.New("peft: output directory exists and is not empty")

// AdapterName is a parsed dual-adapter tensor name,
// <Module>.lora_<Matrix>.<Role>.weight.
type AdapterName struct {
	Module string // e.g. model.layers.0.self_attn.q_proj
	Matrix string // "A" or "B"
	Role   string // e.g. reason
}

// ParseAdapterName splits a dual-adapter tensor name; ok is false for any
// other name.
func ParseAdapterName(name string) (n AdapterName, ok bool) {
	rest, found := strings.CutSuffix(name, ".weight")
	if !found {
		return n, false
	}
	dot := strings.LastIndexByte(rest, '.')
	if dot < 0 {
		return n, false
	}
	n.Role, rest = rest[dot+1:], rest[:dot]
	for _, m := range []string{"A", "B"} {
		if mod, found := strings.CutSuffix(rest, ".lora_"+m); found && mod != "" && n.Role != "" {
			n.Module, n.Matrix = mod, m
			return n, true
		}
	}
	return AdapterName{}, false
}

// String returns the dual-adapter tensor name.
func (n AdapterName) String() string {
	return n.Module + ".lora_" + n.Matrix + "." + n.Role + ".weight"
}

// PEFTKey returns PEFT's key for the module's matrix.
func (n AdapterName) PEFTKey() string {
	return "base_model.model." + n.Module + ".lora_" + n.Matrix + ".weight"
}

// Config is the adapter_config.json PEFT needs to load a LoRA adapter.
type Config struct {
	PeftType            string   `json:"peft_type"`
	TaskType            string   `json:"task_type"`
	R                   int      `json:"r"`
	LoraAlpha           float64  `json:"lora_alpha"`
	LoraDropout         float64  `json:"lora_dropout"`
	TargetModules       []string `json:"target_modules"`
	Bias                string   `json:"bias"`
	BaseModelNameOrPath string   `json:"base_model_name_or_path"`
	FanInFanOut         bool     `json:"fan_in_fan_out"`
	InferenceMode       bool     `json:"inference_mode"`
	InitLoraWeights     bool     `json:"init_lora_weights"`
	UseRSLoRA           bool     `json:"use_rslora"`
	UseDoRA             bool     `json:"use_dora"`
	ModulesToSave       []string `json:"modules_to_save"`
	LayersToTransform   []int    `json:"layers_to_transform"`
	RankPattern         struct{} `json:"rank_pattern"`
	AlphaPattern        struct{} `json:"alpha_pattern"`
	Revision            *string  `json:"revision"`
}

// Adapter is one role's adapter in PEFT form.
type Adapter struct {
	Config  Config
	Tensors []safetensors.Tensor // PEFT keys and orientation
}

// Convert builds the PEFT adapter of role from a dual adapter file.
func Convert(f *safetensors.File, role string) (*Adapter, error) {
	rank, err := strconv.Atoi(f.Metadata[MetaRank])
	if err != nil || rank < 1 {
		return nil, fmt.Errorf("peft: metadata %q = %q, want a positive integer (is this a dartc adapters.safetensors?)", MetaRank, f.Metadata[MetaRank])
	}
	alpha, err := strconv.ParseFloat(f.Metadata[MetaAlpha], 64)
	if err != nil {
		return nil, fmt.Errorf("peft: metadata %q = %q, want a number", MetaAlpha, f.Metadata[MetaAlpha])
	}
	roles := strings.Split(f.Metadata[MetaRoles], ",")
	if !slices.Contains(roles, role) {
		return nil, fmt.Errorf("peft: role %q not in the file's roles %q (metadata %q)", role, f.Metadata[MetaRoles], MetaRoles)
	}
	type pair struct{ a, b *safetensors.Tensor }
	modules := map[string]*pair{}
	var order []string
	for i := range f.Tensors {
		t := &f.Tensors[i]
		n, ok := ParseAdapterName(t.Name)
		if !ok || n.Role != role {
			continue
		}
		p := modules[n.Module]
		if p == nil {
			p = &pair{}
			modules[n.Module] = p
			order = append(order, n.Module)
		}
		if n.Matrix == "A" {
			p.a = t
		} else {
			p.b = t
		}
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("peft: no tensors named <module>.lora_A.%s.weight in the file", role)
	}
	ad := &Adapter{Config: Config{
		PeftType: "LORA", TaskType: "CAUSAL_LM", R: rank, LoraAlpha: alpha, Bias: "none",
		BaseModelNameOrPath: f.Metadata[MetaBaseModel], InferenceMode: true, InitLoraWeights: true,
		ModulesToSave: nil, LayersToTransform: nil,
	}}
	targets := map[string]bool{}
	for _, mod := range order {
		p := modules[mod]
		if p.a == nil || p.b == nil {
			return nil, fmt.Errorf("peft: module %s has lora_A but not lora_B for role %s, or the reverse", mod, role)
		}
		a, b := p.a, p.b
		if len(a.Shape) != 2 || len(b.Shape) != 2 || a.Shape[1] != int64(rank) || b.Shape[0] != int64(rank) {
			return nil, fmt.Errorf("peft: module %s: A is %v and B is %v, want [in, %d] and [%d, out]", mod, a.Shape, b.Shape, rank, rank)
		}
		if a.DType != b.DType {
			return nil, fmt.Errorf("peft: module %s: A is %s but B is %s", mod, a.DType, b.DType)
		}
		at, err := transpose(*a, AdapterName{mod, "A", role}.PEFTKey())
		if err != nil {
			return nil, err
		}
		bt, err := transpose(*b, AdapterName{mod, "B", role}.PEFTKey())
		if err != nil {
			return nil, err
		}
		ad.Tensors = append(ad.Tensors, at, bt)
		targets[mod[strings.LastIndexByte(mod, '.')+1:]] = true
	}
	for t := range targets {
		ad.Config.TargetModules = append(ad.Config.TargetModules, t)
	}
	slices.Sort(ad.Config.TargetModules)
	return ad, nil
}

// transpose returns the 2-D tensor t transposed, named name.
func transpose(t safetensors.Tensor, name string) (safetensors.Tensor, error) {
	rows, cols := int(t.Shape[0]), int(t.Shape[1])
	size := int(t.DType.Size())
	if size == 0 || len(t.Data) != rows*cols*size {
		return safetensors.Tensor{}, fmt.Errorf("peft: tensor %s: %d bytes for %s %v", t.Name, len(t.Data), t.DType, t.Shape)
	}
	out := make([]byte, len(t.Data))
	for i := range rows {
		for j := range cols {
			copy(out[(j*rows+i)*size:(j*rows+i+1)*size], t.Data[(i*cols+j)*size:(i*cols+j+1)*size])
		}
	}
	return safetensors.Tensor{Name: name, DType: t.DType, Shape: []int64{int64(cols), int64(rows)}, Data: out}, nil
}

// Export reads a dual adapter file and writes role's PEFT adapter directory
// at dir, atomically. base_model_name_or_path is the file's base_model
// metadata (the compiled source's path).
func Export(adaptersPath, role, dir string) error { return ExportFor(adaptersPath, role, dir, "") }

// ExportFor is Export with base_model_name_or_path set to baseModel (a
// Hugging Face model id such as Qwen/Qwen2.5-3B-Instruct, which PEFT and
// vLLM load the base from) unless it is "".
func ExportFor(adaptersPath, role, dir, baseModel string) error {
	f, err := safetensors.Read(adaptersPath)
	if err != nil {
		return fmt.Errorf("peft: %w", err)
	}
	if err := f.CheckFinite(); err != nil {
		return fmt.Errorf("peft: %s: %w: the adapters are corrupt (a diverged run? use an earlier checkpoint)", adaptersPath, err)
	}
	ad, err := Convert(f, role)
	if err != nil {
		return fmt.Errorf("%w (in %s)", err, adaptersPath)
	}
	if baseModel != "" {
		ad.Config.BaseModelNameOrPath = baseModel
	}
	return ad.WriteDir(dir)
}

// WriteDir writes adapter_config.json and adapter_model.safetensors into
// dir, which must not exist or be empty. Files are first written to a
// temporary sibling directory that is renamed to dir when complete.
func (ad *Adapter) WriteDir(dir string) (err error) {
	dir = filepath.Clean(dir)
	if entries, rerr := os.ReadDir(dir); rerr == nil {
		if len(entries) > 0 {
			return fmt.Errorf("%w: %s (remove it or choose another -o)", ErrOutputExists, dir)
		}
	} else if !os.IsNotExist(rerr) {
		return fmt.Errorf("peft: %w", rerr)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp-*")
	if err != nil {
		return fmt.Errorf("peft: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	cfg, err := json.MarshalIndent(ad.Config, "", "  ")
	if err != nil {
		return fmt.Errorf("peft: encode config: %w", err)
	}
	if err := writeSynced(filepath.Join(tmp, ConfigFile), append(cfg, '\n')); err != nil {
		return err
	}
	meta := map[string]string{"format": "pt"} // what PEFT's own save writes
	if err := safetensors.Write(filepath.Join(tmp, WeightsFile), ad.Tensors, meta); err != nil {
		return fmt.Errorf("peft: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("peft: %w", err)
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	os.Remove(dir) // an empty directory may stand in the way of the rename
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("peft: %w", err)
	}
	return syncDir(filepath.Dir(dir))
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("peft: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("peft: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("peft: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("peft: close %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("peft: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("peft: sync %s: %w", dir, err)
	}
	return nil
}
