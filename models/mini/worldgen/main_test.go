package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The committed data/mini is what the generator writes with its default
// seed, byte for byte.
func TestCommittedWorldIsRegenerated(t *testing.T) {
	dir := t.TempDir()
	if err := run(dir, "", 12, 0); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		got, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		want, err := os.ReadFile(filepath.Join("../../../data/mini", e.Name()))
		if err != nil {
			t.Errorf("%s: %v", e.Name(), err)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("data/mini/%s differs from the generator's output: run go run ./models/mini/worldgen -o data/mini", e.Name())
		}
	}
}

// No answer can be read off its question, and test people never occur in
// the training questions.
func TestAnswersNeedTheCorpus(t *testing.T) {
	w := newWorld(12)
	splits := w.questions()
	trainPeople := map[string]bool{}
	for _, q := range splits["train"] {
		trainPeople[q.(question).Entity] = true
	}
	for split, qs := range splits {
		for _, a := range qs {
			q := a.(question)
			words := " " + strings.Trim(q.Question, "?") + " "
			for _, g := range q.Golden {
				// A held-out answer is not even part of a word of its
				// question; a training one is not a word of it (a few
				// training names start with a city's name).
				if split != "train" && strings.Contains(q.Question, g) || strings.Contains(words, " "+g+" ") {
					t.Errorf("%s: answer %q is in the question %q", q.ID, g, q.Question)
				}
			}
			if split != "train" && trainPeople[q.Entity] {
				t.Errorf("%s: %s also appears in training", q.ID, q.Entity)
			}
		}
	}
}

// Trajectories follow the agent's format: the prompt first, policy turns
// that end in </search> or </answer>, observations after each search.
func TestTrajectoriesFollowTheAgentFormat(t *testing.T) {
	dir := t.TempDir()
	sft := filepath.Join(dir, "sft.jsonl")
	if err := run(dir, sft, 12, 200); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(sft)
	if err != nil {
		t.Fatal(err)
	}
	correct := 0
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	for _, line := range lines {
		var r sftRow
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		if r.Correct {
			correct++
		}
		if r.Segments[0].Gen || !strings.HasSuffix(r.Segments[0].Text, "<|im_start|>assistant\n") {
			t.Fatalf("%s: first segment %q is not the prompt", r.ID, r.Segments[0].Text)
		}
		for i, s := range r.Segments[1:] {
			last := i+2 == len(r.Segments)
			switch {
			case s.Gen && last && !strings.HasSuffix(s.Text, "</answer>"):
				t.Errorf("%s: last turn %q does not answer", r.ID, s.Text)
			case s.Gen && !last && !strings.HasSuffix(s.Text, "</search>"):
				t.Errorf("%s: turn %q does not end in a search", r.ID, s.Text)
			case !s.Gen && !strings.HasPrefix(s.Text, "\n\n<information>Doc 1(Title: "):
				t.Errorf("%s: observation %q", r.ID, s.Text)
			}
		}
	}
	if frac := float64(correct) / float64(len(lines)); frac < 0.15 || frac > 0.5 {
		t.Errorf("%.2f of the trajectories are right, want a part of them", frac)
	}
}
