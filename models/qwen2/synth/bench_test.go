package synth_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/dartc/dartc/models/qwen2"
	"github.com/dartc/dartc/models/qwen2/synth"
)

// peakRSS reads the process's high-water resident set size (VmHWM) in bytes.
func peakRSS(b *testing.B) float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb * 1024
		}
	}
	b.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// BenchmarkSynthesizeQwen25_3B writes the qwen2.5-3b preset (36 layers,
// hidden 2048, vocab 151936) with KV cache: zero weights in a sparse external
// data file. Reported: wall time per model, the process's peak RSS, the data
// file's apparent size and the bytes it occupies on disk.
func BenchmarkSynthesizeQwen25_3B(b *testing.B) {
	cfg, err := qwen2.Preset("qwen2.5-3b")
	if err != nil {
		b.Fatal(err)
	}
	parent := b.TempDir()
	var res *synth.Result
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(parent, "m"+strconv.Itoa(i))
		res, err = synth.Synthesize(cfg, dir, synth.Options{KVCache: true})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		st, err := os.Stat(res.DataPath)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(st.Size()), "apparent-bytes")
		b.ReportMetric(float64(st.Sys().(*syscall.Stat_t).Blocks*512), "disk-bytes")
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(peakRSS(b)/(1<<20), "peak-RSS-MiB")
}
