package benchcmp

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
)

// Operations of the worker protocol.
const (
	OpLoad      = "load"       // load the model (dartc: Model; PyTorch: Checkpoint, LoRA, Rank, Alpha, Targets)
	OpPrepare   = "prepare"    // get ready for Graph's steps (dartc: open its session, timed apart from them)
	OpBatch     = "batch"      // store Batch under Name
	OpTrain     = "train"      // one train step on batch Name
	OpLogprobs  = "logprobs"   // forward-only log-probs of batch Name (Values: return them)
	OpResetPeak = "reset_peak" // reset the peak RSS to the current RSS
	OpQuit      = "quit"
)

// Request is one line the driver sends to a worker.
type Request struct {
	Op string `json:"op"`
	// load
	Model      string   `json:"model,omitempty"`      // dartc: the compiled directory
	Checkpoint string   `json:"checkpoint,omitempty"` // PyTorch: the Hugging Face checkpoint
	LoRA       string   `json:"lora,omitempty"`       // PyTorch: peft, plain or dual
	Rank       int      `json:"rank,omitempty"`
	Alpha      float64  `json:"alpha,omitempty"`
	Targets    []string `json:"targets,omitempty"`
	Threads    int      `json:"threads,omitempty"`
	Attn       string   `json:"attn,omitempty"`
	Seed       uint64   `json:"seed,omitempty"`
	// prepare
	Graph string `json:"graph,omitempty"`
	// batch, train, logprobs
	Name     string `json:"name,omitempty"`
	Values   bool   `json:"values,omitempty"`
	GradNorm bool   `json:"grad_norm,omitempty"`
	*Batch
}

// Response is one line a worker answers. Load answers carry the worker's
// description in Info (the rest of the line).
type Response struct {
	OK         bool           `json:"ok"`
	Error      string         `json:"error,omitempty"`
	Seconds    float64        `json:"seconds,omitempty"`
	Loss       *float64       `json:"loss,omitempty"`
	GradNorm   *float64       `json:"grad_norm,omitempty"`
	Logprobs   []float64      `json:"logprobs,omitempty"`
	RSSKiB     int64          `json:"rss_kib,omitempty"`
	PeakRSSKiB int64          `json:"peak_rss_kib,omitempty"`
	Info       map[string]any `json:"-"`
}

// ParseResponse reads one answer line. An answer that is not a JSON
// object with "ok" is an error that quotes the line (a worker printing to
// stdout breaks the protocol).
func ParseResponse(line []byte) (Response, error) {
	var r Response
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("not a JSON answer: %q: %v", clip(string(line), 200), err)
	}
	var info map[string]any
	if err := json.Unmarshal(line, &info); err != nil {
		return r, fmt.Errorf("not a JSON object: %q", clip(string(line), 200))
	}
	if _, ok := info["ok"]; !ok {
		return r, fmt.Errorf("answer without \"ok\": %q", clip(string(line), 200))
	}
	r.Info = info
	return r, nil
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Worker is a running worker process.
type Worker struct {
	Name   string // for messages: "dartc", "pytorch"
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr *tailBuffer
}

// StartWorker starts argv as a worker. Its stderr goes to log (when not
// nil) and its last lines are kept for error messages.
func StartWorker(name string, argv []string, env []string, log io.Writer) (*Worker, error) {
	if len(argv) == 0 {
		return nil, fmt.Errorf("benchcmp: %s worker: no command", name)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	tail := &tailBuffer{max: 4096}
	if log != nil {
		cmd.Stderr = io.MultiWriter(tail, log)
	} else {
		cmd.Stderr = tail
	}
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("benchcmp: start the %s worker (%s): %w", name, strings.Join(argv, " "), err)
	}
	w := &Worker{Name: name, cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20), stderr: tail}
	return w, nil
}

// Call sends req and waits for the answer. A worker that exits, answers
// garbage or answers ok=false gives an error naming the worker, the
// operation and the end of its stderr.
func (w *Worker) Call(req Request) (Response, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return Response{}, err
	}
	if _, err := w.in.Write(append(b, '\n')); err != nil {
		return Response{}, w.failed(req.Op, fmt.Errorf("write: %w", err))
	}
	line, err := w.out.ReadBytes('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("the worker exited without answering")
		}
		return Response{}, w.failed(req.Op, err)
	}
	r, err := ParseResponse(line)
	if err != nil {
		return r, w.failed(req.Op, err)
	}
	if !r.OK {
		return r, fmt.Errorf("benchcmp: %s worker: %s: %s", w.Name, req.Op, r.Error)
	}
	return r, nil
}

func (w *Worker) failed(op string, err error) error {
	msg := fmt.Sprintf("benchcmp: %s worker: %s: %v", w.Name, op, err)
	if t := strings.TrimSpace(w.stderr.String()); t != "" {
		msg += "\n--- end of its stderr ---\n" + t
	}
	return errors.New(msg)
}

// Close asks the worker to quit and waits for it; a worker that does not
// answer is killed.
func (w *Worker) Close() error {
	if w.cmd.Process == nil {
		return nil
	}
	b, _ := json.Marshal(Request{Op: OpQuit})
	_, werr := w.in.Write(append(b, '\n'))
	w.in.Close()
	if werr != nil {
		w.cmd.Process.Kill()
	}
	err := w.cmd.Wait()
	if werr == nil && err != nil {
		return fmt.Errorf("benchcmp: %s worker: %v", w.Name, err)
	}
	return nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append([]byte(nil), t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
