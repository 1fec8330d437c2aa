package names

// The greedy outputs of decode.onnx (passes' greedy-outputs).
const (
	NextToken   = "next_token"   // int64 [batch]: argmax of the last logits
	NextLogprob = "next_logprob" // float32 [batch]: its log-softmax
)

// The in-graph sampler's inputs and outputs of decode.onnx (passes'
// sample-outputs).
const (
	SampleTemperature = "sample_temperature" // float32 scalar; ≤ 0: greedy
	SampleTopK        = "sample_top_k"       // int64 scalar; 0: every token
	SampleTopP        = "sample_top_p"       // float32 scalar; ≤ 0 or ≥ 1: every token
	SampleUniform     = "sample_uniform"     // float64 [batch, rounds] in (0, 1]
	SampleToken       = "sample_token"       // int64 [batch]
	SampleLogprob     = "sample_logprob"     // float32 [batch]: log-softmax at the token, temperature 1
	SampleAccepted    = "sample_accepted"    // bool [batch]: false: every round rejected, draw again
)
