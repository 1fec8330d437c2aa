package run

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/internal/atomicfile"
	"github.com/dartc/dartc/internal/filehash"
	"github.com/dartc/dartc/runtime/agent"
)

// SettingsFile records, in an output directory, what its rows were made
// with; resuming with other settings is refused.
const SettingsFile = "settings.json"

// SettingsID is a short digest of settings: every row written under them
// carries it.
func SettingsID(settings map[string]string) string {
	b, _ := json.Marshal(settings) // map keys are sorted
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:8])
}

// AgentSettings describes what makes an agent's rollouts: the compiled
// model (sha256 of its manifest.json, which holds the source's digest,
// the LoRA layout and the tokenizer's), the adapters file's sha256, the
// search backend as given, and the loop and sampling settings.
func AgentSettings(cfg agent.Config, search string) (map[string]string, error) {
	if search != "" && !strings.Contains(search, "://") {
		if abs, err := filepath.Abs(search); err == nil {
			search = abs
		}
	}
	s := map[string]string{
		"search":          search,
		"topk":            strconv.Itoa(cfg.TopK),
		"max_turns":       strconv.Itoa(cfg.MaxTurns),
		"max_turn_tokens": strconv.Itoa(cfg.MaxTurnTokens),
		"max_obs_tokens":  strconv.Itoa(cfg.MaxObsTokens),
		"temperature":     strconv.FormatFloat(cfg.Sampling.Temperature, 'g', -1, 64),
		"top_p":           strconv.FormatFloat(cfg.Sampling.TopP, 'g', -1, 64),
		"top_k":           strconv.Itoa(cfg.Sampling.TopK),
		"system":          cfg.System,
		"adapters":        "none (the base model)",
	}
	var err error
	if s["model"], err = filehash.SHA256(filepath.Join(cfg.Model, manifest.FileName)); err != nil {
		return nil, fmt.Errorf("run: settings: %w", err)
	}
	if cfg.Adapters != "" {
		if s["adapters"], err = filehash.SHA256(cfg.Adapters); err != nil {
			return nil, fmt.Errorf("run: settings: %w", err)
		}
	}
	return s, nil
}

// CheckSettings guards resuming in dir: with no earlier rows it records
// settings (settings.json); with rows it refuses when settings.json is
// missing or differs, naming each difference, and when a row's id (rowIDs,
// the SettingsID each row was written under) is not this one's.
func CheckSettings(dir string, settings map[string]string, rows int, rowIDs []string, what string) error {
	path := filepath.Join(dir, SettingsFile)
	fix := fmt.Sprintf("write to another output directory, or remove %s to start over", what)
	if rows == 0 {
		b, err := json.MarshalIndent(settings, "", "  ")
		if err != nil {
			return fmt.Errorf("run: settings: %w", err)
		}
		return atomicfile.WriteFile(path, append(b, '\n'))
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("run: %s holds %d rows but no %s, so what made them is unknown: %s", what, rows, SettingsFile, fix)
	}
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	var old map[string]string
	if err := json.Unmarshal(b, &old); err != nil {
		return fmt.Errorf("run: %s: %w (%s)", path, err, fix)
	}
	var diff []string
	keys := map[string]bool{}
	for k := range old {
		keys[k] = true
	}
	for k := range settings {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		if old[k] != settings[k] {
			diff = append(diff, fmt.Sprintf("%s: %q → %q", k, shortHash(old[k]), shortHash(settings[k])))
		}
	}
	if len(diff) > 0 {
		return fmt.Errorf("run: %s was made with other settings (%s); resuming would mix rows of two runs: %s", what, strings.Join(diff, "; "), fix)
	}
	id := SettingsID(settings)
	for i, r := range rowIDs {
		if r != id {
			return fmt.Errorf("run: %s row %d was made under settings %q, not this run's %q (rows of two runs in one file): %s", what, i+1, r, id, fix)
		}
	}
	return nil
}

// shortHash shortens a 64-digit hex digest for messages.
func shortHash(s string) string {
	if len(s) == 64 && strings.Trim(s, "0123456789abcdef") == "" {
		return s[:12] + "…"
	}
	return s
}
