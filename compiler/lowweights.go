package compiler

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/passes"
)

// lowWeights writes the backbone's weights converted to float16 or
// bfloat16 into one new external data file in the output directory,
// streaming each tensor in chunks: memory stays flat whatever the model's
// size. Graphs share it: a source tensor is converted once.
type lowWeights struct {
	dir, name, path string
	dt              ir.DType
	f               *os.File
	size            int64
	done            map[ir.External]int64 // source → offset in the new file
	buf, out        []byte
}

// lowChunk is how many source bytes are converted at a time.
const lowChunk = 4 << 20

// lowAlign aligns each tensor so ONNX Runtime can map it.
const lowAlign = 4096

func newLowWeights(dir string, dt ir.DType) *lowWeights {
	name := "weights." + dt.String() + ".data"
	return &lowWeights{dir: dir, name: name, path: filepath.Join(dir, name), dt: dt, done: map[ir.External]int64{}}
}

// place writes the converted bytes of m's retyped initializers (once per
// source tensor) and points the initializers at them.
func (w *lowWeights) place(m *ir.Model, converted map[string]ir.External, links *linker) error {
	if len(converted) == 0 {
		return nil
	}
	for _, t := range m.Graph.Initializers {
		src, ok := converted[t.Name]
		if !ok || t.External == nil {
			continue
		}
		off, err := w.write(src)
		if err != nil {
			return fmt.Errorf("compiler: convert weight %q to %s: %w", t.Name, w.dt, err)
		}
		t.External = &ir.External{Location: w.name, File: w.path, Offset: off, Length: src.Length / 4 * int64(w.dt.Size())}
	}
	return nil
}

// write converts one float32 tensor and returns its offset. Chunks of
// zeros are skipped (left as a hole): sparse sources stay sparse.
func (w *lowWeights) write(src ir.External) (int64, error) {
	if off, ok := w.done[src]; ok {
		return off, nil
	}
	if w.f == nil {
		f, err := os.OpenFile(w.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return 0, err
		}
		w.f, w.buf = f, make([]byte, lowChunk)
	}
	in, err := os.Open(src.File)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	off := (w.size + lowAlign - 1) / lowAlign * lowAlign
	pos := off
	for done := int64(0); done < src.Length; {
		n := min(int64(len(w.buf)), src.Length-done)
		if _, err := in.ReadAt(w.buf[:n], src.Offset+done); err != nil && err != io.EOF {
			return 0, err
		}
		w.out = passes.LowPrecisionBytes(w.out[:0], w.buf[:n], w.dt)
		if !allZero(w.out) {
			if _, err := w.f.WriteAt(w.out, pos); err != nil {
				return 0, err
			}
		}
		pos += int64(len(w.out))
		done += n
	}
	w.size = pos
	w.done[src] = off
	return off, nil
}

func allZero(b []byte) bool {
	return len(b) == 0 || (b[0] == 0 && bytes.Equal(b[1:], b[:len(b)-1]))
}

// close sets the file's length (trailing holes) and syncs it.
func (w *lowWeights) close() error {
	if w.f == nil {
		return nil
	}
	f := w.f
	w.f = nil
	if err := f.Truncate(w.size); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
