package grpo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/dartc/dartc/eval"
	"github.com/dartc/dartc/internal/atomicfile"
	"github.com/dartc/dartc/internal/filehash"
)

// RunFile is the run's fingerprint inside the run directory.
const RunFile = "run.json"

// OverrideData names the training data in Options.Override.
const OverrideData = "data"

// Fingerprint identifies what a run trains: the compiled model (the
// source's sha256 from the manifest), the initial adapters and the
// training examples. The settings are config.yaml.
type Fingerprint struct {
	ModelSHA256    string `json:"model_sha256"`
	AdaptersSHA256 string `json:"initial_adapters_sha256"`
	// DataSHA256 hashes the examples as loaded (source, id, question,
	// answers, in order), so the same questions in another file format
	// match.
	DataSHA256   string `json:"data_sha256"`
	DataExamples int    `json:"data_examples"`
}

// fingerprint computes the run's fingerprint.
func (tr *Trainer) fingerprint() (Fingerprint, error) {
	fp := Fingerprint{ModelSHA256: tr.man.Source.SHA256, DataExamples: len(tr.opts.Data), DataSHA256: DataHash(tr.opts.Data)}
	var err error
	if fp.AdaptersSHA256, err = filehash.SHA256(filepath.Join(tr.opts.Model, tr.man.AdaptersFile)); err != nil {
		return fp, fmt.Errorf("grpo: fingerprint: %w", err)
	}
	return fp, nil
}

// DataHash is the sha256 of the examples as loaded.
func DataHash(exs []eval.Example) string {
	h := sha256.New()
	enc := json.NewEncoder(h)
	for _, ex := range exs {
		enc.Encode([]any{ex.Source, ex.ID, ex.Question, ex.Golden})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// writeRunFiles records the settings (config.yaml) and the fingerprint
// (run.json).
func (tr *Trainer) writeRunFiles(fp Fingerprint) error {
	b, err := yaml.Marshal(tr.cfg)
	if err != nil {
		return fmt.Errorf("grpo: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(tr.opts.Run, ConfigFile), b); err != nil {
		return err
	}
	j, err := json.MarshalIndent(fp, "", "  ")
	if err != nil {
		return fmt.Errorf("grpo: %w", err)
	}
	return atomicfile.WriteFile(filepath.Join(tr.opts.Run, RunFile), append(j, '\n'))
}

// ConfigKeys lists the settings' YAML keys, in Config's order.
func ConfigKeys() []string {
	t := reflect.TypeOf(Config{})
	keys := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		keys = append(keys, strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0])
	}
	return keys
}

// ConfigDiff lists the keys whose values differ between a and b, with
// "key: a → b" descriptions, in Config's order.
func ConfigDiff(a, b Config) (keys, desc []string) {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	names := ConfigKeys()
	for i := range va.NumField() {
		x, y := va.Field(i).Interface(), vb.Field(i).Interface()
		if x != y {
			keys = append(keys, names[i])
			desc = append(desc, fmt.Sprintf("%s: %v → %v", names[i], x, y))
		}
	}
	return keys, desc
}

// checkResume compares the run's recorded settings and fingerprint with
// this trainer's: a changed setting or changed data is refused unless
// Options.Override names it; a changed model or initial adapters is
// always refused. Accepted overrides rewrite config.yaml (and run.json),
// and a run without run.json (written before runs had one) gets one: that
// write is returned as commit, for the caller to run once the checkpoint
// has loaded, so that a resume that fails leaves the run's files as they
// were.
func (tr *Trainer) checkResume() (commit func() error, err error) {
	run := tr.opts.Run
	known := map[string]bool{OverrideData: true}
	for _, k := range ConfigKeys() {
		known[k] = true
	}
	over := map[string]bool{}
	for _, k := range tr.opts.Override {
		k = strings.ReplaceAll(strings.TrimSpace(k), "-", "_")
		if !known[k] {
			ks := ConfigKeys()
			sort.Strings(ks)
			return nil, fmt.Errorf("grpo: --override %q: not a setting; choose among %s, %s", k, OverrideData, strings.Join(ks, ", "))
		}
		over[k] = true
	}
	cpath := filepath.Join(run, ConfigFile)
	old, err := LoadConfig(cpath)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("grpo: %s has no %s: not a dartc train run, or one written by hand; start a new run instead of --resume", run, ConfigFile)
	}
	if err != nil {
		return nil, fmt.Errorf("grpo: resume: %w (the run's settings are unreadable: fix or remove the file)", err)
	}
	keys, desc := ConfigDiff(old, tr.cfg)
	var refused []string
	for i, k := range keys {
		if !over[k] {
			refused = append(refused, desc[i])
		}
	}
	fp, err := tr.fingerprint()
	if err != nil {
		return nil, err
	}
	rec, err := readFingerprint(run)
	haveRec := err == nil
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("grpo: resume: %w (the run's fingerprint is unreadable: restore it or start a new run)", err)
	}
	if haveRec {
		if rec.ModelSHA256 != fp.ModelSHA256 {
			return nil, fmt.Errorf("grpo: resume: %s was trained on the model with sha256 %s, but --model %s is %s: resume with the same compiled model, or start a new run", run, short(rec.ModelSHA256), tr.opts.Model, short(fp.ModelSHA256))
		}
		if rec.AdaptersSHA256 != fp.AdaptersSHA256 {
			return nil, fmt.Errorf("grpo: resume: %s started from initial adapters with sha256 %s, but %s has %s (recompiled with another seed, rank or targets?): resume with the same compiled directory, or start a new run", run, short(rec.AdaptersSHA256), tr.opts.Model, short(fp.AdaptersSHA256))
		}
		if rec.DataSHA256 != fp.DataSHA256 && !over[OverrideData] {
			refused = append(refused, fmt.Sprintf("data: %d examples (sha256 %s) → %d examples (sha256 %s)", rec.DataExamples, short(rec.DataSHA256), fp.DataExamples, short(fp.DataSHA256)))
		}
	}
	if len(refused) > 0 {
		var names []string
		for _, d := range refused {
			names = append(names, strings.SplitN(d, ":", 2)[0])
		}
		return nil, fmt.Errorf("grpo: resume: %s was run with other settings (%s): resume without changing them, or pass --override %s to change them (config.yaml is rewritten)",
			run, strings.Join(refused, "; "), strings.Join(names, ","))
	}
	if len(keys) > 0 || !haveRec || rec != fp {
		return func() error {
			if len(keys) > 0 || rec.DataSHA256 != fp.DataSHA256 {
				tr.log.Info("resume overrides settings", "changed", strings.Join(desc, "; "), "data_changed", haveRec && rec.DataSHA256 != fp.DataSHA256)
			}
			return tr.writeRunFiles(fp)
		}, nil
	}
	return func() error { return nil }, nil
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12] + "…"
	}
	return h
}

// readFingerprint reads RUN/run.json strictly (unknown fields refused); a
// missing file is os.ErrNotExist.
func readFingerprint(run string) (Fingerprint, error) {
	var fp Fingerprint
	path := filepath.Join(run, RunFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return fp, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fp); err != nil {
		return fp, fmt.Errorf("%s: %w", path, err)
	}
	return fp, nil
}
