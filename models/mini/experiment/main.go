// Command experiment tabulates scripts/mini-experiment.sh's output
// directory as Markdown: EM of every variant on the single- and two-hop
// test questions (mean over seeds with a 95% t interval, and each run's
// 95% Wilson interval), wall time and peak memory of each run, and the
// gradient-angle and LEAS summaries.
//
//	go run ./models/mini/experiment OUT
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: experiment OUT (the directory of scripts/mini-experiment.sh)")
		os.Exit(2)
	}
	if err := report(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "experiment:", err)
		os.Exit(1)
	}
}

// em reads an eval report's predictions: right and total per dataset.
func em(dir string) (right, total map[string]int, err error) {
	f, err := os.Open(filepath.Join(dir, "predictions.jsonl"))
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	right, total = map[string]int{}, map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 1<<26)
	for sc.Scan() {
		var p struct {
			Source string  `json:"data_source"`
			EM     float64 `json:"em"`
		}
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", dir, err)
		}
		total[p.Source]++
		total["all"]++
		if p.EM == 1 {
			right[p.Source]++
			right["all"]++
		}
	}
	return right, total, sc.Err()
}

// timing reads a /usr/bin/time record written by the script.
func timing(path string) (wall, rssMB float64, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, " ")
		x, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
		switch k {
		case "wall_s":
			wall = x
		case "max_rss_kb":
			rssMB = x / 1024
		}
	}
	return wall, rssMB, true
}

func wilson(k, n int) (lo, hi float64) {
	const z = 1.959964
	p, nn := float64(k)/float64(n), float64(n)
	c := (p + z*z/(2*nn)) / (1 + z*z/nn)
	h := z / (1 + z*z/nn) * math.Sqrt(p*(1-p)/nn+z*z/(4*nn*nn))
	return c - h, c + h
}

// t975 is the 0.975 quantile of Student's t with df degrees of freedom.
var t975 = []float64{0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262}

func meanCI(xs []float64) (mean, half float64) {
	for _, x := range xs {
		mean += x
	}
	mean /= float64(len(xs))
	if len(xs) < 2 || len(xs) > len(t975) {
		return mean, math.NaN()
	}
	ss := 0.0
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return mean, t975[len(xs)-1] * math.Sqrt(ss/float64(len(xs)-1)/float64(len(xs)))
}

func report(out string) error {
	evals, _ := filepath.Glob(filepath.Join(out, "eval", "*", "predictions.jsonl"))
	if len(evals) == 0 {
		if _, err := os.Stat(filepath.Join(out, "compiled", "manifest.json")); err != nil {
			return fmt.Errorf("%s holds no experiment (no compiled/manifest.json); run scripts/mini-experiment.sh %s first", out, out)
		}
		fmt.Printf("## EM on the test questions\n\nnot run (no evaluations under %s/eval: PARTS=train)\n", out)
	}
	if len(evals) > 0 {
		type run struct {
			name, variant string
			right, total  map[string]int
		}
		byVariant := map[string][]run{}
		var order []string
		for _, p := range evals {
			dir := filepath.Dir(p)
			name := filepath.Base(dir)
			right, total, err := em(dir)
			if err != nil {
				return err
			}
			variant := name
			if i := strings.LastIndex(name, "-s"); i > 0 {
				variant = name[:i]
			}
			if _, ok := byVariant[variant]; !ok {
				order = append(order, variant)
			}
			byVariant[variant] = append(byVariant[variant], run{name, variant, right, total})
		}
		rank := map[string]int{"base": 0, "single": 1, "dual": 2, "two-agent": 3}
		sort.SliceStable(order, func(i, j int) bool { return rank[order[i]] < rank[order[j]] })
		sets := []string{"test_1hop", "test_2hop", "all"}
		fmt.Printf("## EM on the test questions (greedy)\n\nMean over seeds ± the 95%% t-interval half-width (n = seeds); base is deterministic.\n\n")
		fmt.Printf("| variant | seeds | single-hop | two-hop | all |\n|---|---:|---:|---:|---:|\n")
		for _, v := range order {
			runs := byVariant[v]
			fmt.Printf("| %s | %d |", v, len(runs))
			for _, s := range sets {
				var xs []float64
				for _, r := range runs {
					xs = append(xs, float64(r.right[s])/float64(max(1, r.total[s])))
				}
				m, h := meanCI(xs)
				if math.IsNaN(h) {
					fmt.Printf(" %.3f |", m)
				} else {
					fmt.Printf(" %.3f ± %.3f |", m, h)
				}
			}
			fmt.Println()
		}
		fmt.Printf("\n## Each run\n\nEM with its 95%% Wilson interval over the questions; wall time and peak resident memory of `dartc train` (and of `dartc eval`).\n\n")
		fmt.Printf("| run | single-hop | two-hop | all | train wall s | train peak MB | eval wall s | eval peak MB |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, v := range order {
			for _, r := range byVariant[v] {
				fmt.Printf("| %s |", r.name)
				for _, s := range sets {
					lo, hi := wilson(r.right[s], max(1, r.total[s]))
					fmt.Printf(" %.3f [%.2f, %.2f] |", float64(r.right[s])/float64(max(1, r.total[s])), lo, hi)
				}
				for _, f := range []string{filepath.Join(out, "runs", r.name+".time"), filepath.Join(out, "eval", r.name+".time")} {
					if w, m, ok := timing(f); ok {
						fmt.Printf(" %.0f | %.0f |", w, m)
					} else {
						fmt.Printf(" – | – |")
					}
				}
				fmt.Println()
			}
		}
	}
	for _, part := range []struct{ dir, title string }{{"angles", "Gradient angles (dartc gradangle)"}, {"leas", "LEAS (dartc leas)"}} {
		b, err := os.ReadFile(filepath.Join(out, part.dir, "summary.json"))
		if err != nil {
			fmt.Printf("\n## %s\n\nnot run (%s/summary.json missing)\n", part.title, part.dir)
			continue
		}
		fmt.Printf("\n## %s\n\n```json\n%s\n```\n", part.title, strings.TrimSpace(string(b)))
		if w, m, ok := timing(filepath.Join(out, part.dir+".time")); ok {
			fmt.Printf("\nwall %.0f s, peak %.0f MB\n", w, m)
		}
	}
	return nil
}
