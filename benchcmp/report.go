package benchcmp

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Header is the text above the table: what ran and how.
func Header(cfg Config, cores int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "dartc vs PyTorch eager (%s LoRA), same weights, same batch: %s, batch %d, lengths %v\n",
		cfg.TorchLoRA, cfg.Label, cfg.Rows, cfg.Seqs)
	fmt.Fprintf(&b, "threads: ONNX Runtime intra-op = torch.set_num_threads = %d (this machine: %d cores); "+
		"steps interleaved dartc, PyTorch, dartc, …; %d warm-up step(s) per side excluded, %d timed\n",
		cfg.Threads, cores, cfg.Warmup, cfg.Reps)
	fmt.Fprintf(&b, "train: forward + GRPO loss (every next-token position weighted) + backward to the LoRA adapters only "+
		"(no optimizer); log-probs: forward only. Peak RSS: each side's own process, VmHWM reset after loading\n")
	return b.String()
}

// TableHeader and Row write the markdown table.
func TableHeader() string {
	return "| model | step | batch × tokens | dartc min / median s | PyTorch min / median s | dartc / PyTorch (median) | " +
		"dartc peak RSS GiB | PyTorch peak RSS GiB | check | load before → after |\n" +
		"|---|---|---|---|---|---|---|---|---|---|\n"
}

func Row(r Result) string {
	step := "train step"
	if r.Phase == PhaseLogprobs {
		step = "log-probs (forward)"
	}
	return fmt.Sprintf("| %s | %s | %d × %d | %.3f / %.3f | %.3f / %.3f | **%.2f×** (min %.2f×) | %.2f | %.2f | %s | %s → %s |\n",
		r.Model, step, r.Rows, r.Seq, r.Dartc.Min, r.Dartc.Median, r.Torch.Min, r.Torch.Median, r.RatioMedian, r.RatioMin,
		r.Dartc.PeakRSSMiB/1024, r.Torch.PeakRSSMiB/1024, r.Check, r.LoadBefore, r.LoadAfter)
}

// WriteJSONL writes r as one JSON line.
func WriteJSONL(w io.Writer, r Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
