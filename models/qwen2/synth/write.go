package synth

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/dartc/dartc/internal/float16"
	"os"
	"path/filepath"
	"strconv"

	"github.com/dartc/dartc/internal/outpath"
	"github.com/dartc/dartc/ir/onnxpb"
	"github.com/dartc/dartc/models/qwen2"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// ErrExists is returned when the output directory exists and Force is unset.
var ErrExists = errors.New("synth: output directory exists")

// producer is the ModelProto.producer_name of every model Synthesize writes.
const producer = "dartc models synth"

// recogniseSynth accepts a directory holding only model.onnx (written by
// Synthesize: its producer_name says so), model.onnx.data and config.json.
func recogniseSynth(dir string, names []string) error {
	for _, n := range names {
		if n != ModelFile && n != DataFile && n != ConfigFile {
			return fmt.Errorf("it holds %q, which models synth does not write", n)
		}
	}
	f, err := os.Open(filepath.Join(dir, ModelFile))
	if err != nil {
		return errors.New("it has no model.onnx")
	}
	defer f.Close()
	head := make([]byte, 4096)
	n, _ := io.ReadFull(f, head)
	if producerName(head[:n]) != producer {
		return fmt.Errorf("its model.onnx was not written by %s", producer)
	}
	return nil
}

// producerName reads ModelProto.producer_name (field 2) from the start of
// a serialized model; "" when it is not within b.
func producerName(b []byte) string {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ""
		}
		b = b[n:]
		if num == 2 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return ""
			}
			return string(v)
		}
		n = protowire.ConsumeFieldValue(num, typ, b)
		if n < 0 {
			return ""
		}
		b = b[n:]
	}
	return ""
}

// File names inside the output directory.
const (
	ModelFile  = "model.onnx"
	DataFile   = "model.onnx.data"
	ConfigFile = "config.json" // the Hugging Face config of the shapes

)

// layout assigns each tensor to inline or external storage and returns the
// data file's size (0 when nothing is external).
func layout(tensors []*weightTensor, elemSize int, external bool) int64 {
	var end int64
	for _, t := range tensors {
		if !external || t.numel < ExternalMinElements {
			continue
		}
		off := (end + ExternalAlign - 1) / ExternalAlign * ExternalAlign
		n := int64(t.numel) * int64(elemSize)
		t.proto.DataLocation = onnxpb.TensorProto_EXTERNAL.Enum()
		t.proto.ExternalData = []*onnxpb.StringStringEntryProto{
			{Key: proto.String("location"), Value: proto.String(DataFile)},
			{Key: proto.String("offset"), Value: proto.String(strconv.FormatInt(off, 10))},
			{Key: proto.String("length"), Value: proto.String(strconv.FormatInt(n, 10))},
		}
		end = off + n
	}
	return end
}

func isExternal(t *weightTensor) bool {
	return t.proto.GetDataLocation() == onnxpb.TensorProto_EXTERNAL
}

// encode writes t's values (zeros when values is nil) in little-endian dtype.
func encode(w io.Writer, t *weightTensor, values []float64, dtype DType) error {
	put := func(x float64, buf []byte) []byte {
		switch dtype {
		case Float64:
			return binary.LittleEndian.AppendUint64(buf, math.Float64bits(x))
		case Float16:
			return binary.LittleEndian.AppendUint16(buf, float16.FromFloat32(float32(x)))
		case BFloat16:
			return binary.LittleEndian.AppendUint16(buf, float16.BFloat16FromFloat32(float32(x)))
		}
		return binary.LittleEndian.AppendUint32(buf, math.Float32bits(float32(x)))
	}
	buf := make([]byte, 0, 64<<10)
	flush := func() error {
		_, err := w.Write(buf)
		buf = buf[:0]
		return err
	}
	for i := 0; i < t.numel; i++ {
		var x float64
		if values != nil {
			if t.transpose { // stored [in, out]: element (j, o) is W[o, j]
				j, o := i/t.rows, i%t.rows
				x = values[o*t.cols+j]
			} else {
				x = values[i]
			}
		}
		buf = put(x, buf)
		if len(buf) >= cap(buf)-8 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

type sliceWriter struct{ b *[]byte }

func (s sliceWriter) Write(p []byte) (int, error) { *s.b = append(*s.b, p...); return len(p), nil }

// writeFiles writes model.onnx (and model.onnx.data when dataSize > 0) into
// dir. With nil weights the data file is only extended to its size, so it is
// one hole and costs no disk blocks.
// writeConfig writes cfg as a Hugging Face Qwen2 config.json (the fields an
// optimum export carries beside its model.onnx): dartc compile reads its
// max_position_embeddings as the model's context.
func writeConfig(dir string, cfg qwen2.Config, dtype DType) error {
	hf := map[string]any{
		"architectures":           []string{"Qwen2ForCausalLM"},
		"model_type":              "qwen2",
		"hidden_size":             cfg.Hidden,
		"intermediate_size":       cfg.Intermediate,
		"num_hidden_layers":       cfg.Layers,
		"num_attention_heads":     cfg.Heads,
		"num_key_value_heads":     cfg.KVHeads,
		"vocab_size":              cfg.Vocab,
		"max_position_embeddings": cfg.MaxPositions,
		"rope_theta":              cfg.RopeTheta,
		"rms_norm_eps":            cfg.RMSEps,
		"tie_word_embeddings":     cfg.TiedEmbed,
		"torch_dtype":             dtype.String(),
	}
	b, err := json.MarshalIndent(hf, "", "  ")
	if err != nil {
		return fmt.Errorf("synth: config.json: %w", err)
	}
	return writeSynced(filepath.Join(dir, ConfigFile), func(f *os.File) error {
		_, err := f.Write(append(b, '\n'))
		return err
	})
}

func writeFiles(dir string, model *onnxpb.ModelProto, tensors []*weightTensor, weights map[string][]float64, dtype DType, dataSize int64) error {
	elemSize := dtype.Size()
	for _, t := range tensors {
		if isExternal(t) {
			continue
		}
		raw := make([]byte, 0, t.numel*elemSize)
		if err := encode(sliceWriter{&raw}, t, weights[t.param], dtype); err != nil {
			return err
		}
		t.proto.RawData = raw
	}
	if dataSize > 0 {
		if err := writeData(filepath.Join(dir, DataFile), tensors, weights, dtype, dataSize); err != nil {
			return err
		}
	}
	b, err := proto.Marshal(model)
	if err != nil {
		return fmt.Errorf("synth: marshal model: %w", err)
	}
	for _, t := range tensors { // the drawn weights stay in the map; drop the copies
		t.proto.RawData = nil
	}
	return writeSynced(filepath.Join(dir, ModelFile), func(f *os.File) error {
		_, err := f.Write(b)
		return err
	})
}

func writeData(path string, tensors []*weightTensor, weights map[string][]float64, dtype DType, size int64) error {
	return writeSynced(path, func(f *os.File) error {
		if weights != nil {
			for _, t := range tensors {
				if !isExternal(t) {
					continue
				}
				off, _ := strconv.ParseInt(t.proto.ExternalData[1].GetValue(), 10, 64)
				bw := bufio.NewWriterSize(io.NewOffsetWriter(f, off), 1<<20)
				if err := encode(bw, t, weights[t.param], dtype); err != nil {
					return err
				}
				if err := bw.Flush(); err != nil {
					return err
				}
			}
		}
		// Gaps between tensors and, for zero weights, the whole file stay holes.
		return f.Truncate(size)
	})
}

func writeSynced(path string, fill func(*os.File) error) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	if err := fill(f); err != nil {
		f.Close()
		return fmt.Errorf("synth: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("synth: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("synth: close %s: %w", path, err)
	}
	return nil
}

// atomicDir fills a temporary sibling of dir and renames it into place, so
// dir either does not change or appears complete.
func atomicDir(dir string, force bool, fill func(tmp string) error) error {
	dir = filepath.Clean(dir)
	exists, err := outpath.Dir(dir, force, nil, recogniseSynth)
	switch {
	case errors.Is(err, outpath.ErrExists):
		return fmt.Errorf("%w: %s (choose another directory or pass --force to replace it)", ErrExists, dir)
	case err != nil:
		return fmt.Errorf("synth: %w", err)
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("synth: %w", err)
	}
	if err := fill(tmp); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if exists {
		old := tmp + ".old"
		if err := os.Rename(dir, old); err != nil {
			os.RemoveAll(tmp)
			return fmt.Errorf("synth: move the old %s aside: %w", dir, err)
		}
		defer os.RemoveAll(old)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("synth: %w", err)
	}
	if d, err := os.Open(parent); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
