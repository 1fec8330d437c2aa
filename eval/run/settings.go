package run

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/dartc/dartc/compiler/manifest"
	"github.com/dartc/dartc/internal/atomicfile"
	"github.com/dartc/dartc/internal/filehash"
	"github.com/dartc/dartc/internal/jsonerr"
	"github.com/dartc/dartc/internal/outpath"
	"github.com/dartc/dartc/retrieval/connect"
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

// Keys of settings.json besides the settings of AgentSettings.
const (
	// CommandKey names the command that wrote the directory (eval, leas,
	// gradangle), so that another command, or a second run aimed at a
	// folder of someone else's, leaves it alone. It is not part of
	// SettingsID: rows written before it was recorded keep their id.
	CommandKey = "command"
	// SearchDigestKey holds the sha256 of the BM25 index file given as
	// --search: the path alone would let an index rebuilt in place with
	// other passages resume rows made with the old one.
	SearchDigestKey = "search_sha256"
)

// laterKeys are settings recorded only since some version of dartc. A
// directory whose settings.json predates one resumes when everything else
// matches, with a warning, and its rows keep their id (computed without
// the key), so old reports are not stranded.
var laterKeys = map[string]string{SearchDigestKey: "the search index's sha256"}

// AgentSettings describes what makes an agent's rollouts: the compiled
// model (sha256 of its manifest.json, which holds the source's digest,
// the LoRA layout and the tokenizer's), the adapters file's sha256, the
// search backend (a BM25 index by its absolute path and sha256, a
// /retrieve URL as given), and the loop and sampling settings.
func AgentSettings(cfg agent.Config, search string) (map[string]string, error) {
	s := map[string]string{
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
	if search != "" && !connect.IsURL(search) {
		if abs, err := filepath.Abs(search); err == nil {
			search = abs
		}
		d, err := filehash.SHA256(search)
		if err != nil {
			return nil, fmt.Errorf("run: settings: search index: %w", err)
		}
		s[SearchDigestKey] = d
	}
	s["search"] = search
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

// ReadSettings reads a settings.json: an object of strings. A value of
// another kind is named by its key.
func ReadSettings(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("%s: %w", path, jsonerr.Describe(err))
	}
	s := make(map[string]string, len(raw))
	for k, v := range raw {
		var str string
		if err := json.Unmarshal(v, &str); err != nil {
			// Decoded value by value, so that the message can name the key.
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				te.Field = k
			}
			return nil, fmt.Errorf("%s: %w", path, jsonerr.Describe(err))
		}
		s[k] = str
	}
	return s, nil
}

// writeSettings records settings and the command in dir's settings.json.
func writeSettings(path, command string, settings map[string]string) error {
	s := maps.Clone(settings)
	if s == nil {
		s = map[string]string{}
	}
	s[CommandKey] = command
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("run: settings: %w", err)
	}
	return atomicfile.WriteFile(path, append(b, '\n'))
}

// CheckDir checks, before anything is written, that command may write
// into dir: it is missing or empty, or its settings.json says command
// wrote it. legacy recognises a directory of command's from before
// settings.json named its command, by its settings and file names (nil:
// none is). Nothing else is written into: not a folder of the user's, and
// not another command's report.
func CheckDir(dir, command string, legacy func(settings map[string]string, names []string) bool) error {
	_, err := outpath.Own(dir, func(dir string, names []string) error {
		path := filepath.Join(dir, SettingsFile)
		s, err := ReadSettings(path)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("it has no %s, so dartc %s did not write it", SettingsFile, command)
		}
		if err != nil {
			return fmt.Errorf("its %s is not one dartc writes: %w", SettingsFile, err)
		}
		switch got := s[CommandKey]; {
		case got == command:
			return nil
		case got != "":
			return fmt.Errorf("its %s says dartc %s wrote it, not dartc %s", SettingsFile, got, command)
		case legacy != nil && legacy(s, names):
			return nil
		}
		return fmt.Errorf("its %s does not say that dartc %s wrote it", SettingsFile, command)
	})
	if err != nil {
		return fmt.Errorf("run: %w", err)
	}
	return nil
}

// Command is the name `dartc eval` records in settings.json.
const Command = "eval"

// CheckOutput checks that `dartc eval` may write its report into dir
// (CheckDir): call it before loading the model, to fail early.
func CheckOutput(dir string) error {
	return CheckDir(dir, Command, func(s map[string]string, names []string) bool {
		// An eval report's settings name adapters but neither k (leas) nor
		// group (gradangle), and it always has predictions.jsonl.
		_, adapters := s["adapters"]
		_, k := s["k"]
		_, group := s["group"]
		return adapters && !k && !group && slices.Contains(names, PredictionsFile)
	})
}

// CheckSettings guards resuming in dir, written by command: with no
// earlier rows it records settings and command (settings.json); with rows
// it refuses when settings.json is missing, names another command or
// differs, naming each difference, and when a row's id (rowIDs, the
// SettingsID each row was written under) is not this run's. It returns
// the id this run's rows are to carry: SettingsID(settings), less any key
// of laterKeys the recorded settings predate.
func CheckSettings(dir, command string, settings map[string]string, rows int, rowIDs []string, what string) (string, error) {
	path := filepath.Join(dir, SettingsFile)
	fix := fmt.Sprintf("write to another output directory, or remove %s to start over", what)
	if rows == 0 {
		return SettingsID(settings), writeSettings(path, command, settings)
	}
	old, err := ReadSettings(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("run: %s holds %d rows but no %s, so what made them is unknown: %s", what, rows, SettingsFile, fix)
	}
	if err != nil {
		return "", fmt.Errorf("run: %w (%s)", err, fix)
	}
	if got := old[CommandKey]; got != "" && got != command {
		return "", fmt.Errorf("run: %s was written by dartc %s, not dartc %s: %s", path, got, command, fix)
	}
	delete(old, CommandKey)
	cur, predates := settings, []string{}
	for _, k := range slices.Sorted(maps.Keys(laterKeys)) {
		if _, had := old[k]; !had && settings[k] != "" {
			if len(predates) == 0 {
				cur = maps.Clone(settings)
			}
			delete(cur, k)
			predates = append(predates, laterKeys[k])
		}
	}
	var diff []string
	keys := map[string]bool{}
	for k := range old {
		keys[k] = true
	}
	for k := range cur {
		keys[k] = true
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		if old[k] != cur[k] {
			d := fmt.Sprintf("%s: %q → %q", k, shortHash(old[k]), shortHash(cur[k]))
			if k == SearchDigestKey {
				d += fmt.Sprintf(" (the index %s was rebuilt or replaced since)", cur["search"])
			}
			diff = append(diff, d)
		}
	}
	if len(diff) > 0 {
		return "", fmt.Errorf("run: %s was made with other settings (%s); resuming would mix rows of two runs: %s", what, strings.Join(diff, "; "), fix)
	}
	id := SettingsID(cur)
	for i, r := range rowIDs {
		if r != id {
			return "", fmt.Errorf("run: %s row %d was made under settings %q, not this run's %q (rows of two runs in one file): %s", what, i+1, r, id, fix)
		}
	}
	if len(predates) > 0 {
		slog.Warn(fmt.Sprintf("resuming %s, whose %s predates the record of %s: rows made with another index at %s cannot be told apart; if it was rebuilt since, start over in another output directory",
			what, SettingsFile, strings.Join(predates, " and "), cur["search"]))
	}
	return id, nil
}

// shortHash shortens a 64-digit hex digest for messages.
func shortHash(s string) string {
	if len(s) == 64 && strings.Trim(s, "0123456789abcdef") == "" {
		return s[:12] + "…"
	}
	return s
}
