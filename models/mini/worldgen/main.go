// Command worldgen writes the mini world: a knowledge base of invented
// people, companies, cities and countries, its passage corpus, the QA splits
// and the Search-R1-format trajectories the mini model is trained on. The
// output is a deterministic function of -seed.
//
//	go run ./models/mini/worldgen -o data/mini                   # world, corpus, QA splits
//	go run ./models/mini/worldgen -o data/mini -sft out/sft.jsonl # plus the training trajectories
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/dartc/dartc/models/prompt"
	"github.com/dartc/dartc/retrieval"
	"github.com/dartc/dartc/retrieval/bm25"
	"github.com/dartc/dartc/retrieval/corpus"
)

func main() {
	out := flag.String("o", "data/mini", "output directory of the world, corpus and QA splits")
	sft := flag.String("sft", "", "also write the training trajectories (JSONL of text segments) to this file")
	seed := flag.Uint64("seed", 12, "seed of the world")
	trajectories := flag.Int("trajectories", 12000, "training trajectories to write with -sft")
	flag.Parse()
	if err := run(*out, *sft, *seed, *trajectories); err != nil {
		fmt.Fprintln(os.Stderr, "worldgen:", err)
		os.Exit(1)
	}
}

func run(out, sftPath string, seed uint64, n int) error {
	w := newWorld(seed)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("worldgen: %w", err)
	}
	if err := writeJSONL(filepath.Join(out, "corpus.jsonl"), w.corpus()); err != nil {
		return err
	}
	splits := w.questions()
	for _, name := range []string{"train", "val", "test"} {
		if err := writeJSONL(filepath.Join(out, name+".jsonl"), splits[name]); err != nil {
			return err
		}
		if name == "train" {
			continue
		}
		for _, hops := range []int{1, 2} {
			var sub []any
			for _, q := range splits[name] {
				if q.(question).Hops == hops {
					sub = append(sub, q)
				}
			}
			if err := writeJSONL(filepath.Join(out, fmt.Sprintf("%s_%dhop.jsonl", name, hops)), sub); err != nil {
				return err
			}
		}
	}
	if err := writeJSON(filepath.Join(out, "kb.json"), w); err != nil {
		return err
	}
	if sftPath == "" {
		return nil
	}
	ix, cleanup, err := w.index()
	if err != nil {
		return err
	}
	defer cleanup()
	rng := rand.New(rand.NewPCG(seed, 2))
	var rows []any
	train := splits["train"]
	for i := 0; i < n; i++ {
		q := train[rng.IntN(len(train))].(question)
		t, err := w.trajectory(ix, q, rng)
		if err != nil {
			return err
		}
		rows = append(rows, t)
	}
	return writeJSONL(sftPath, rows)
}

// Syllables of the invented names; no name is an English word.
var (
	onsets = []string{"b", "br", "d", "dr", "f", "g", "gl", "k", "kr", "l", "m", "n", "p", "pr", "r", "s", "st", "t", "tr", "v", "z", "th", "sh"}
	vowels = []string{"a", "e", "i", "o", "u", "ai", "ou", "ei"}
	codas  = []string{"", "", "n", "r", "l", "s", "m", "k", "x", "nd", "rt"}
)

type person struct {
	Name     string `json:"name"`
	BornIn   string `json:"born_in"`   // a city
	WorksFor string `json:"works_for"` // a company
	Split    string `json:"split"`
}

type company struct {
	Name    string `json:"name"`
	BasedIn string `json:"based_in"` // a city
}

type city struct {
	Name    string `json:"name"`
	Country string `json:"country"`
}

type world struct {
	Seed      uint64    `json:"seed"`
	Countries []string  `json:"countries"`
	Cities    []city    `json:"cities"`
	Companies []company `json:"companies"`
	People    []person  `json:"people"`

	cityOf    map[string]city
	companyOf map[string]company
}

// Sizes of the world and of the splits (people per split).
const (
	nCountries = 8
	nCities    = 40
	nCompanies = 50
	nFirst     = 70
	nLast      = 120
	nTrain     = 1200
	nVal       = 100
	nTest      = 200
)

func newWorld(seed uint64) *world {
	rng := rand.New(rand.NewPCG(seed, 1))
	used := map[string]bool{}
	word := func(syl int) string {
		for {
			var b strings.Builder
			for i := 0; i < syl; i++ {
				b.WriteString(onsets[rng.IntN(len(onsets))])
				b.WriteString(vowels[rng.IntN(len(vowels))])
				if i == syl-1 || rng.IntN(3) == 0 {
					b.WriteString(codas[rng.IntN(len(codas))])
				}
			}
			s := b.String()
			s = strings.ToUpper(s[:1]) + s[1:]
			if !used[s] && len(s) >= 5 {
				used[s] = true
				return s
			}
		}
	}
	w := &world{Seed: seed, cityOf: map[string]city{}, companyOf: map[string]company{}}
	for range nCountries {
		w.Countries = append(w.Countries, word(2+rng.IntN(2)))
	}
	for range nCities {
		c := city{Name: word(1 + rng.IntN(2)), Country: w.Countries[rng.IntN(nCountries)]}
		w.Cities = append(w.Cities, c)
		w.cityOf[c.Name] = c
	}
	suffixes := []string{"Works", "Labs", "Mills", "Foundry", "Trading", "Press"}
	for range nCompanies {
		c := company{Name: word(2) + " " + suffixes[rng.IntN(len(suffixes))], BasedIn: w.Cities[rng.IntN(nCities)].Name}
		w.Companies = append(w.Companies, c)
		w.companyOf[c.Name] = c
	}
	first := make([]string, nFirst)
	for i := range first {
		first[i] = word(2)
	}
	last := make([]string, nLast)
	for i := range last {
		last[i] = word(2 + rng.IntN(2))
	}
	names := map[string]bool{}
	for len(w.People) < nTrain+nVal+nTest {
		name := first[rng.IntN(nFirst)] + " " + last[rng.IntN(nLast)]
		if names[name] {
			continue
		}
		names[name] = true
		split := "train"
		switch k := len(w.People); {
		case k >= nTrain+nVal:
			split = "test"
		case k >= nTrain:
			split = "val"
		}
		w.People = append(w.People, person{Name: name, BornIn: w.Cities[rng.IntN(nCities)].Name,
			WorksFor: w.Companies[rng.IntN(nCompanies)].Name, Split: split})
	}
	return w
}

type passage struct {
	Title string `json:"title"`
	Text  string `json:"text"`
}

func personText(p person) string {
	return fmt.Sprintf("%s was born in %s. %s works for %s.", p.Name, p.BornIn, p.Name, p.WorksFor)
}

// corpus is one passage per person, company and city, in that order.
func (w *world) corpus() []any {
	var rows []any
	for _, p := range w.People {
		rows = append(rows, passage{p.Name, personText(p)})
	}
	for _, c := range w.Companies {
		rows = append(rows, passage{c.Name, fmt.Sprintf("%s is a company based in %s.", c.Name, c.BasedIn)})
	}
	for _, c := range w.Cities {
		rows = append(rows, passage{c.Name, fmt.Sprintf("%s is a city in %s.", c.Name, c.Country)})
	}
	return rows
}

// Relations asked about. Single-hop: born, employer; two-hop (bridge):
// country (person → city → country), hq (person → company → city).
const (
	relBorn     = "born"
	relEmployer = "employer"
	relCountry  = "country"
	relHQ       = "hq"
)

type question struct {
	ID       string   `json:"id"`
	Question string   `json:"question"`
	Golden   []string `json:"golden_answers"`
	Hops     int      `json:"hops"`
	Relation string   `json:"relation"`
	Entity   string   `json:"entity"`
	Bridge   string   `json:"bridge,omitempty"`
}

func (w *world) ask(p person, rel string) question {
	q := question{Relation: rel, Entity: p.Name, Hops: 1}
	switch rel {
	case relBorn:
		q.Question, q.Golden = fmt.Sprintf("Where was %s born?", p.Name), []string{p.BornIn}
	case relEmployer:
		q.Question, q.Golden = fmt.Sprintf("Which company does %s work for?", p.Name), []string{p.WorksFor}
	case relCountry:
		q.Question, q.Golden, q.Hops, q.Bridge = fmt.Sprintf("In which country was %s born?", p.Name), []string{w.cityOf[p.BornIn].Country}, 2, p.BornIn
	case relHQ:
		q.Question, q.Golden, q.Hops, q.Bridge = fmt.Sprintf("In which city is the company %s works for based?", p.Name), []string{w.companyOf[p.WorksFor].BasedIn}, 2, p.WorksFor
	}
	return q
}

// questions: every train person gets all four relations; a val or test
// person gets one single-hop and one two-hop question.
func (w *world) questions() map[string][]any {
	rng := rand.New(rand.NewPCG(w.Seed, 3))
	out := map[string][]any{}
	for _, p := range w.People {
		rels := []string{relBorn, relEmployer, relCountry, relHQ}
		if p.Split != "train" {
			rels = []string{[]string{relBorn, relEmployer}[rng.IntN(2)], []string{relCountry, relHQ}[rng.IntN(2)]}
		}
		for _, rel := range rels {
			q := w.ask(p, rel)
			q.ID = fmt.Sprintf("%s-%d", p.Split, len(out[p.Split]))
			out[p.Split] = append(out[p.Split], q)
		}
	}
	for _, split := range []string{"train", "val", "test"} {
		qs := out[split]
		rng.Shuffle(len(qs), func(i, j int) { qs[i], qs[j] = qs[j], qs[i] })
		for i := range qs {
			q := qs[i].(question)
			q.ID = fmt.Sprintf("mini-%s-%04d", split, i)
			qs[i] = q
		}
	}
	return out
}

// index builds the BM25 index of the corpus in a temporary directory, as
// `dartc search index --format title-text` does.
func (w *world) index() (*bm25.Index, func(), error) {
	dir, err := os.MkdirTemp("", "worldgen-*")
	if err != nil {
		return nil, nil, fmt.Errorf("worldgen: %w", err)
	}
	cleanup := func() { os.RemoveAll(dir) }
	var b strings.Builder
	for _, r := range w.corpus() {
		line, _ := json.Marshal(r)
		b.Write(line)
		b.WriteByte('\n')
	}
	rd, err := corpus.NewReader(strings.NewReader(b.String()), corpus.TitleText)
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	path := filepath.Join(dir, "mini.bm25")
	if _, err := bm25.Build(context.Background(), rd, path, bm25.DefaultParams); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("worldgen: index: %w", err)
	}
	ix, err := bm25.Open(path)
	if err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("worldgen: index: %w", err)
	}
	return ix, cleanup, nil
}

// segment is a piece of a training trajectory: the prompt and the
// observations are inserted by the environment (Gen false), the rest is
// what the policy writes.
type segment struct {
	Text string `json:"text"`
	Gen  bool   `json:"gen"`
}

type sftRow struct {
	ID       string    `json:"id"`
	Correct  bool      `json:"correct"`
	Segments []segment `json:"segments"`
}

// Rates of the mistakes in the training trajectories: the base model learns
// this mixture, so it follows the format and is right only part of the
// time. For three of the four relations one mistake is more likely than
// its correct step, so greedy decoding, which follows the likelier branch,
// answers those wrongly; sampling takes the correct branch often enough
// for GRPO to find it.
type rates struct {
	guess     float64 // answer at once with a random entity of the right kind
	badQuery  float64 // search one part of the name only (the first name for employer)
	wrongDoc  float64 // copy the fact from another passage than the entity's
	stopEarly float64 // two-hop: answer after one search (the bridge, or for hq the birthplace)
}

var mistakes = map[string]rates{
	relBorn:     {guess: 0.15, badQuery: 0.25, wrongDoc: 0.2},
	relEmployer: {guess: 0.15, badQuery: 0.6, wrongDoc: 0.2},                  // a tool mistake
	relCountry:  {guess: 0.15, badQuery: 0.25, wrongDoc: 0.2, stopEarly: 0.6}, // a reasoning mistake
	relHQ:       {guess: 0.15, badQuery: 0.25, wrongDoc: 0.2, stopEarly: 0.6}, // a reasoning mistake
}

const topK = 3

// fact is what a passage says about the relation asked.
func (w *world) fact(title, rel string) (string, bool) {
	for _, p := range w.People {
		if p.Name == title {
			switch rel {
			case relBorn, relCountry:
				return p.BornIn, true
			default:
				return p.WorksFor, true
			}
		}
	}
	if c, ok := w.cityOf[title]; ok {
		return c.Country, true
	}
	if c, ok := w.companyOf[title]; ok {
		return c.BasedIn, true
	}
	return "", false
}

func (w *world) sentence(subject, rel, value string) string {
	switch rel {
	case relBorn, relCountry:
		return fmt.Sprintf("%s was born in %s.", subject, value)
	case relEmployer, relHQ:
		return fmt.Sprintf("%s works for %s.", subject, value)
	case "city":
		return fmt.Sprintf("%s is a city in %s.", subject, value)
	default: // "company"
		return fmt.Sprintf("%s is a company based in %s.", subject, value)
	}
}

// pick chooses the passage to copy from: the one titled subject (when
// retrieved and not making a mistake), else another one.
func (w *world) pick(hits []retrieval.Passage, subject string, pWrongDoc float64, rng *rand.Rand) (title string) {
	titles := make([]string, len(hits))
	match := -1
	for i, h := range hits {
		t, _ := retrieval.SplitTitle(h.Contents)
		titles[i] = strings.Trim(t, `"`)
		if titles[i] == subject && match < 0 {
			match = i
		}
	}
	if match >= 0 && rng.Float64() >= pWrongDoc {
		return titles[match]
	}
	if match < 0 {
		return titles[0]
	}
	others := append(append([]string{}, titles[:match]...), titles[match+1:]...)
	if len(others) == 0 {
		return titles[match]
	}
	return others[rng.IntN(len(others))]
}

func (w *world) trajectory(ix *bm25.Index, q question, rng *rand.Rand) (sftRow, error) {
	row := sftRow{ID: q.ID}
	add := func(text string, gen bool) { row.Segments = append(row.Segments, segment{text, gen}) }
	add(prompt.SearchR1Chat(q.Question, ""), false)
	search := func(query string) ([]retrieval.Passage, error) {
		res, err := ix.Search(context.Background(), []string{query}, topK)
		if err != nil {
			return nil, fmt.Errorf("worldgen: search %q: %w", query, err)
		}
		add(prompt.Observation(retrieval.FormatObservation(res[0])), false)
		return res[0], nil
	}
	answer := func(think, ans string) {
		add(fmt.Sprintf("<think> %s </think>\n<answer> %s </answer>", think, ans), true)
		row.Correct = ans == q.Golden[0]
	}
	m := mistakes[q.Relation]
	if rng.Float64() < m.guess {
		var ans string
		switch q.Relation {
		case relBorn, relHQ:
			ans = w.Cities[rng.IntN(len(w.Cities))].Name
		case relEmployer:
			ans = w.Companies[rng.IntN(len(w.Companies))].Name
		default:
			ans = w.Countries[rng.IntN(len(w.Countries))]
		}
		answer("I know this.", ans)
		return row, nil
	}
	query := q.Entity
	if rng.Float64() < m.badQuery {
		parts := strings.Fields(q.Entity)
		query = parts[rng.IntN(len(parts))]
		if q.Relation == relEmployer {
			query = parts[0]
		}
	}
	add(fmt.Sprintf("<think> I need to search %s. </think>\n<search> %s </search>", q.Entity, query), true)
	hits, err := search(query)
	if err != nil {
		return row, err
	}
	title := w.pick(hits, q.Entity, m.wrongDoc, rng)
	value, _ := w.fact(title, q.Relation)
	said := w.sentence(q.Entity, q.Relation, value)
	if q.Hops == 1 {
		answer(said, value)
		return row, nil
	}
	if rng.Float64() < m.stopEarly {
		if q.Relation == relHQ { // answers the city the person was born in
			born, _ := w.fact(title, relBorn)
			answer(w.sentence(q.Entity, relBorn, born), born)
		} else {
			answer(said, value)
		}
		return row, nil
	}
	add(fmt.Sprintf("<think> %s I need to search %s. </think>\n<search> %s </search>", said, value, value), true)
	if hits, err = search(value); err != nil {
		return row, err
	}
	kind := "city"
	if q.Relation == relHQ {
		kind = "company"
	}
	final, _ := w.fact(w.pick(hits, value, m.wrongDoc, rng), q.Relation)
	answer(w.sentence(value, kind, final), final)
	return row, nil
}

func writeJSONL(path string, rows []any) error {
	var b strings.Builder
	for _, r := range rows {
		line, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("worldgen: %s: %w", path, err)
		}
		b.Write(line)
		b.WriteByte('\n')
	}
	return writeFile(path, []byte(b.String()))
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return fmt.Errorf("worldgen: %s: %w", path, err)
	}
	return writeFile(path, append(b, '\n'))
}

func writeFile(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("worldgen: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("worldgen: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("worldgen: %w", err)
	}
	return nil
}
