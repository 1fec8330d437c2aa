package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/dartc/dartc/safetensors"
)

func TestExportPEFTCommand(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "adapters.safetensors")
	ts := []safetensors.Tensor{
		safetensors.FromFloat32("model.layers.0.self_attn.q_proj.lora_A.tool.weight", []int64{3, 2}, []float32{1, 2, 3, 4, 5, 6}),
		safetensors.FromFloat32("model.layers.0.self_attn.q_proj.lora_B.tool.weight", []int64{2, 1}, []float32{7, 8}),
	}
	if err := safetensors.Write(src, ts, map[string]string{"rank": "2", "alpha": "4", "roles": "reason,tool", "base_model": "tiny"}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "peft")
	if _, err := runDartc(t, "", "export-peft", "--role", "tool", "-o", out, src); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.Read(filepath.Join(out, "adapter_model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := f.Get("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight")
	if err != nil {
		t.Fatal(err)
	}
	// [[1 2] [3 4] [5 6]] transposed is [[1 3 5] [2 4 6]].
	if v, _ := a.Float32s(); !reflect.DeepEqual(v, []float32{1, 3, 5, 2, 4, 6}) || !reflect.DeepEqual(a.Shape, []int64{2, 3}) {
		t.Errorf("lora_A = %v", v)
	}
	if _, err := runDartc(t, "", "export-peft", "--role", "reason", "-o", filepath.Join(dir, "none"), src); err == nil {
		t.Error("role without tensors exported")
	}
}

// TestExportPEFTBaseModel: --base-model writes the Hugging Face id into
// adapter_config.json's base_model_name_or_path; without it the file's
// base_model metadata stays.
func TestExportPEFTBaseModel(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "adapters.safetensors")
	ts := []safetensors.Tensor{
		safetensors.FromFloat32("model.layers.0.self_attn.q_proj.lora_A.tool.weight", []int64{3, 2}, []float32{1, 2, 3, 4, 5, 6}),
		safetensors.FromFloat32("model.layers.0.self_attn.q_proj.lora_B.tool.weight", []int64{2, 1}, []float32{7, 8}),
	}
	if err := safetensors.Write(src, ts, map[string]string{"rank": "2", "alpha": "4", "roles": "reason,tool", "base_model": "/models/src/model.onnx"}); err != nil {
		t.Fatal(err)
	}
	base := func(out string) string {
		b, err := os.ReadFile(filepath.Join(out, "adapter_config.json"))
		if err != nil {
			t.Fatal(err)
		}
		var cfg struct {
			Base string `json:"base_model_name_or_path"`
		}
		json.Unmarshal(b, &cfg)
		return cfg.Base
	}
	if _, err := runDartc(t, "", "export-peft", "--role", "tool", "--base-model", "Qwen/Qwen2.5-3B-Instruct", "-o", filepath.Join(dir, "a"), src); err != nil {
		t.Fatal(err)
	}
	if got := base(filepath.Join(dir, "a")); got != "Qwen/Qwen2.5-3B-Instruct" {
		t.Errorf("with --base-model: %q", got)
	}
	if _, err := runDartc(t, "", "export-peft", "--role", "tool", "-o", filepath.Join(dir, "b"), src); err != nil {
		t.Fatal(err)
	}
	if got := base(filepath.Join(dir, "b")); got != "/models/src/model.onnx" {
		t.Errorf("without --base-model: %q", got)
	}
}
