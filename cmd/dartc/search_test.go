package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestServeRefusesBadLimits: `search serve` refuses, before serving, a
// limit that is not positive (the library reads 0 as "the default", so
// --max-topk 0 used to serve with 1000) and a --topk the other limits
// contradict (--topk 5 --max-topk 3 used to answer 5 passages per query).
func TestServeRefusesBadLimits(t *testing.T) {
	idx := filepath.Join(t.TempDir(), "small.bm25")
	if msg, code := dartcProcess(t, "search", "index", "--corpus", "../../retrieval/testdata/small.jsonl", "-o", idx); code != 0 {
		t.Fatalf("index: %s", msg)
	}
	cases := []struct {
		args []string
		has  []string
	}{
		{[]string{"--topk", "5", "--max-topk", "3"}, []string{"--topk", "5", "--max-topk", "3"}},
		{[]string{"--topk", "10", "--max-results", "5"}, []string{"--topk", "10", "--max-results", "5"}},
		{[]string{"--topk", "0"}, []string{"--topk is 0", "positive"}},
		{[]string{"--max-topk", "0"}, []string{"--max-topk is 0", "positive"}},
		{[]string{"--max-results", "-1"}, []string{"--max-results is -1", "positive"}},
		{[]string{"--max-body", "0"}, []string{"--max-body is 0", "positive"}},
		{[]string{"--max-query-bytes", "0"}, []string{"--max-query-bytes is 0", "positive"}},
		{[]string{"--timeout", "0s"}, []string{"--timeout is 0s", "positive"}},
	}
	for _, c := range cases {
		args := append([]string{"search", "serve", "--index", idx, "--addr", "127.0.0.1:0"}, c.args...)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cmd := exec.CommandContext(ctx, os.Args[0], args...)
		cmd.Env = append(os.Environ(), "DARTC_RUN_MAIN=1")
		out, err := cmd.CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		if timedOut {
			t.Errorf("%v: still serving after 30 s; want a refusal", c.args)
			continue
		}
		if err == nil || strings.Contains(string(out), "serving") {
			t.Errorf("%v: exit %v, output %q; want a refusal before serving", c.args, err, out)
			continue
		}
		for _, want := range c.has {
			if !strings.Contains(string(out), want) {
				t.Errorf("%v: output %q does not say %q", c.args, out, want)
			}
		}
	}
}

// TestServeQueryLimits: --max-query-bytes and --timeout reach the server:
// a query over the byte limit gets a 400, a request past the time limit a
// 503, both with a JSON error naming the flag.
func TestServeQueryLimits(t *testing.T) {
	idx := filepath.Join(t.TempDir(), "hotpot.bm25")
	if msg, code := dartcProcess(t, "search", "index", "--corpus", "../../data/demo/corpus.jsonl", "--format", "title-text", "-o", idx); code != 0 {
		t.Fatalf("index: %s", msg)
	}
	_, stderr := startDartc(t, "search", "serve", "--index", idx, "--addr", "127.0.0.1:0",
		"--max-query-bytes", "200", "--timeout", "1ms")
	addr := regexp.MustCompile(`addr=(http://\S+)`)
	var url string
	for url == "" {
		line, err := stderr.ReadString('\n')
		if err != nil {
			t.Fatalf("serve ended before serving: %v", err)
		}
		if m := addr.FindStringSubmatch(line); m != nil {
			url = m[1]
		}
	}
	go io.Copy(io.Discard, stderr) // the request log
	post := func(queries []string) (int, string) {
		body, _ := json.Marshal(map[string]any{"queries": queries, "topk": 1})
		resp, err := http.Post(url, "application/json", strings.NewReader(string(body)))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&e)
		return resp.StatusCode, e.Error
	}
	if status, msg := post([]string{strings.Repeat("a", 201)}); status != 400 || !strings.Contains(msg, "--max-query-bytes") {
		t.Errorf("a 201-byte query: status %d, error %q; want 400 naming --max-query-bytes", status, msg)
	}
	heavy := make([]string, 4000) // far more than 1 ms of scoring
	for i := range heavy {
		heavy[i] = "the of and a in to was is for on as by with his at from that he which an"
	}
	if status, msg := post(heavy); status != 503 || !strings.Contains(msg, "--timeout") {
		t.Errorf("a request past --timeout 1ms: status %d, error %q; want 503 naming --timeout", status, msg)
	}
}
