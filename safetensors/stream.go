package safetensors

import (
	"bufio"
	"fmt"

	"github.com/dartc/dartc/internal/atomicfile"
)

// WriteStream writes a file whose tensors are produced one at a time: the
// Data of each spec is ignored, and fill writes tensor i's bytes into dst
// (len(dst) is the tensor's byte size). Peak memory is one tensor, not the
// file. The write is atomic, as Write's.
func WriteStream(path string, specs []Tensor, metadata map[string]string, fill func(i int, dst []byte) error) (err error) {
	for _, t := range specs {
		t.Data = make([]byte, 0)
		if t.Name == "" || t.Name == metadataKey {
			return fmt.Errorf("%w: tensor name %q is reserved or empty", ErrBadHeader, t.Name)
		}
		if err := checkDType(t.DType); err != nil {
			return fmt.Errorf("tensor %q: %w", t.Name, err)
		}
		if numElements(t.Shape) < 0 {
			return fmt.Errorf("%w: tensor %q has shape %v", ErrBadHeader, t.Name, t.Shape)
		}
	}
	hdr, _, err := encodeHeader(specs, metadata)
	if err != nil {
		return err
	}
	f, err := atomicfile.Create(path)
	if err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	defer func() {
		if err != nil {
			f.Abort()
		}
	}()
	w := bufio.NewWriterSize(f, 1<<20)
	if _, err = w.Write(hdr); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	var buf []byte
	for i, t := range specs {
		n := numElements(t.Shape) * t.DType.Size()
		if int64(cap(buf)) < n {
			buf = make([]byte, n)
		}
		dst := buf[:n]
		clear(dst)
		if err = fill(i, dst); err != nil {
			return fmt.Errorf("safetensors: write %s: tensor %q: %w", path, t.Name, err)
		}
		if _, err = w.Write(dst); err != nil {
			return fmt.Errorf("safetensors: write %s: %w", path, err)
		}
	}
	if err = w.Flush(); err != nil {
		return fmt.Errorf("safetensors: write %s: %w", path, err)
	}
	if err = f.Commit(); err != nil {
		return fmt.Errorf("safetensors: %w", err)
	}
	return nil
}
