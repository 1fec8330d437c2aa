package synth

import (
	"fmt"
	"github.com/dartc/dartc/models/qwen2"
	"math"
	"strings"

	"github.com/dartc/dartc/internal/float16"
	"github.com/dartc/dartc/ir/onnxpb"
)

// DType is the floating-point type of the graph's weights and activations.
type DType int

// The supported dtypes.
const (
	Float32 DType = iota
	Float64
	// Float16 and BFloat16 write the weights, constants and activations in
	// the low type throughout, as an export of a checkpoint converted with
	// .half() or .to(torch.bfloat16) does (ONNX Runtime's CPU provider has
	// almost no bfloat16 kernels: such a model is a compile input, not a
	// CPU model).
	Float16
	BFloat16
)

func (d DType) String() string {
	switch d {
	case Float64:
		return "float64"
	case Float16:
		return "float16"
	case BFloat16:
		return "bfloat16"
	}
	return "float32"
}

// Size is the byte size of one element.
func (d DType) Size() int {
	switch d {
	case Float64:
		return 8
	case Float16, BFloat16:
		return 2
	}
	return 4
}

// elem is the ONNX element type.
func (d DType) elem() onnxpb.TensorProto_DataType {
	switch d {
	case Float64:
		return onnxpb.TensorProto_DOUBLE
	case Float16:
		return onnxpb.TensorProto_FLOAT16
	case BFloat16:
		return onnxpb.TensorProto_BFLOAT16
	}
	return onnxpb.TensorProto_FLOAT
}

// round returns x as stored in the type (float32 values are rounded first,
// as weights drawn for a float32 model are).
func (d DType) round(x float64) float64 {
	switch d {
	case Float32:
		return float64(float32(x))
	case Float16:
		return float64(float16.ToFloat32(float16.FromFloat32(float32(x))))
	case BFloat16:
		return float64(float16.BFloat16ToFloat32(float16.BFloat16FromFloat32(float32(x))))
	}
	return x
}

// lowest is the most negative finite value (the attention mask's fill).
func (d DType) lowest() float64 {
	switch d {
	case Float64:
		return -math.MaxFloat64
	case Float16:
		return -65504
	case BFloat16:
		return -3.3895313892515355e38
	}
	return -math.MaxFloat32
}

// ParseDType accepts float32 (fp32), float64 (fp64), float16 (fp16) and
// bfloat16 (bf16).
func ParseDType(s string) (DType, error) {
	switch strings.ToLower(s) {
	case "float32", "fp32", "":
		return Float32, nil
	case "float64", "fp64", "double":
		return Float64, nil
	case "float16", "fp16", "half":
		return Float16, nil
	case "bfloat16", "bf16":
		return BFloat16, nil
	}
	return 0, fmt.Errorf("synth: unknown dtype %q (want float32, float64, float16 or bfloat16)", s)
}

// LinearForm selects how target linears appear in the graph.
type LinearForm int

// The three forms real exporters write.
const (
	// TorchScript is torch.onnx.export(dynamo=False) as optimum runs it:
	// MatMul(x, W[in,out]) with an anonymous pre-transposed initializer
	// onnx::MatMul_N, node names /model/layers.N/self_attn/q_proj/MatMul.
	TorchScript LinearForm = iota
	// Dynamo is torch.onnx.export(dynamo=True, optimize=False):
	// MatMul(x, Transpose(W[out,in])) with the parameter's own name, node
	// names node_<Op>_<n> and pkg.torch.onnx.name_scopes metadata.
	Dynamo
	// Gemm flattens x to 2-D and uses Gemm(x, W[out,in], b, transB=1).
	Gemm
)

func (f LinearForm) String() string {
	switch f {
	case Dynamo:
		return "dynamo"
	case Gemm:
		return "gemm"
	}
	return "torchscript"
}

// ParseLinearForm accepts torchscript, dynamo or gemm.
func ParseLinearForm(s string) (LinearForm, error) {
	switch strings.ToLower(s) {
	case "torchscript", "":
		return TorchScript, nil
	case "dynamo":
		return Dynamo, nil
	case "gemm":
		return Gemm, nil
	}
	return 0, fmt.Errorf("synth: unknown linear form %q (want torchscript, dynamo or gemm)", s)
}

// WeightMode selects the weights' values.
type WeightMode int

// Weight modes.
const (
	// WeightsAuto draws random weights up to RandomWeightLimit parameters
	// and uses zeros above it.
	WeightsAuto WeightMode = iota
	// WeightsRandom draws seeded random weights.
	WeightsRandom
	// WeightsZero makes every weight zero; external data is then a sparse
	// file with no bytes written.
	WeightsZero
)

// StorageMode selects where weights are stored.
type StorageMode int

// Storage modes.
const (
	// StorageAuto stores weights inline up to InlineLimit bytes, externally above.
	StorageAuto StorageMode = iota
	// StorageInline keeps every tensor in model.onnx.
	StorageInline
	// StorageExternal puts every tensor of at least ExternalMinElements
	// elements in model.onnx.data.
	StorageExternal
)

// Limits of the automatic modes.
const (
	// RandomWeightLimit is the largest parameter count that WeightsAuto fills
	// with random values (the drawn weights are also kept as float64).
	RandomWeightLimit = 64 << 20
	// InlineLimit is the largest total weight size that StorageAuto keeps inline.
	InlineLimit = 1 << 30
	// ExternalMinElements is the smallest tensor moved to external data;
	// smaller ones stay inline, as onnx.save_model's size_threshold does.
	ExternalMinElements = 1024
	// ExternalAlign is the alignment of every tensor's offset in the data file.
	ExternalAlign = 4096
)

// Options control Synthesize. The zero value is a float32 TorchScript-form
// graph without KV cache, seed 0, automatic weights and storage.
type Options struct {
	DType      DType
	KVCache    bool // add past_key_values.* inputs and present.* outputs
	LinearForm LinearForm
	Seed       uint64
	Weights    WeightMode
	Storage    StorageMode
	Force      bool // replace an existing output directory
}

// Random reports whether Synthesize draws random weights for cfg.
func (o Options) Random(cfg qwen2.Config) bool {
	return o.Weights == WeightsRandom || (o.Weights == WeightsAuto && cfg.ParamCount() <= RandomWeightLimit)
}

// RandomWeightBytes is the memory that random weights for cfg take while
// they are written: every parameter drawn as a float64 (Result.Weights),
// and the largest tensor once more in the stored dtype.
func RandomWeightBytes(cfg qwen2.Config) int64 {
	largest := max(int64(cfg.Vocab)*int64(cfg.Hidden), int64(cfg.Intermediate)*int64(cfg.Hidden))
	return cfg.ParamCount()*8 + largest*8
}
