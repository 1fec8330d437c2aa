package runtime

import (
	"fmt"
	"os"
	"strings"

	"github.com/dartc/dartc/runtime/internal/ortc"
	ort "github.com/yalue/onnxruntime_go"
)

// ConfigDisableCPUFallback is ONNX Runtime's session config key for strict
// placement: with "1", creating a session fails when a node has no kernel on
// the requested execution provider instead of running it on the CPU.
const ConfigDisableCPUFallback = "session.disable_cpu_ep_fallback"

// Environment variables that set Diagnostics fields left empty.
const (
	EnvORTLog     = "DARTC_ORT_LOG"     // verbose, info, warning, error, fatal
	EnvORTProfile = "DARTC_ORT_PROFILE" // profile file prefix
	EnvORTStrict  = "DARTC_ORT_STRICT"  // 1: no CPU fallback
)

// Diagnostics make a session explain itself.
type Diagnostics struct {
	// LogLevel is the session's ONNX Runtime log level: verbose, info,
	// warning, error or fatal ("": the environment's, else ONNX Runtime's
	// default). At verbose ONNX Runtime logs the node placements when the
	// session is created ("All nodes placed on [...]", or per provider the
	// nodes it runs), which shows the nodes that fell back to the CPU.
	LogLevel string
	// Profile, when set, enables ONNX Runtime's profiler: a Chrome-trace
	// JSON with one event per node run (name, op type, provider,
	// duration), written as Profile_<date>.json when the session ends.
	Profile string
	// Strict refuses CPU fallback on the CUDA device: session creation
	// fails when a node has no CUDA kernel (ONNX Runtime's message names the
	// CPU-assigned nodes at log level warning and below). It has no meaning
	// on the CPU device and is ignored there.
	Strict bool
}

var logLevels = map[string]int{"verbose": ortc.LogVerbose, "info": ortc.LogInfo, "warning": ortc.LogWarning,
	"error": ortc.LogError, "fatal": ortc.LogFatal}

// ParseLogLevel checks an ONNX Runtime log level name.
func ParseLogLevel(s string) error {
	if _, ok := logLevels[strings.ToLower(s)]; !ok && s != "" {
		return fmt.Errorf("runtime: log level %q: want verbose, info, warning, error or fatal", s)
	}
	return nil
}

type diagnostics struct {
	LogLevel int // -1: ONNX Runtime's default
	Profile  string
	Strict   bool
}

// diag resolves opts' diagnostics against the environment.
func (opts *Options) diag() diagnostics {
	d := opts.Diagnostics
	if d.LogLevel == "" {
		d.LogLevel = os.Getenv(EnvORTLog)
	}
	if d.Profile == "" {
		d.Profile = os.Getenv(EnvORTProfile)
	}
	if !d.Strict {
		v := os.Getenv(EnvORTStrict)
		d.Strict = v == "1" || strings.EqualFold(v, "true")
	}
	out := diagnostics{LogLevel: -1, Profile: d.Profile, Strict: d.Strict}
	if lv, ok := logLevels[strings.ToLower(d.LogLevel)]; ok {
		out.LogLevel = lv
	}
	return out
}

// checkDiagnostics reports a bad log level before a session is created.
func (opts *Options) checkDiagnostics() error {
	d := opts.Diagnostics
	if d.LogLevel == "" {
		if err := ParseLogLevel(os.Getenv(EnvORTLog)); err != nil {
			return fmt.Errorf("%s: %w", EnvORTLog, err)
		}
	}
	return ParseLogLevel(d.LogLevel)
}

// applyDiagnostics sets the diagnostics on onnxruntime_go's options.
func applyDiagnostics(so *ort.SessionOptions, opts *Options) error {
	if err := opts.checkDiagnostics(); err != nil {
		return err
	}
	d := opts.diag()
	if d.LogLevel >= 0 {
		if err := so.SetLogSeverityLevel(ort.LoggingLevel(d.LogLevel)); err != nil {
			return fmt.Errorf("log level: %w", err)
		}
	}
	if d.Strict && opts.Device == DeviceCUDA {
		if err := so.AddSessionConfigEntry(ConfigDisableCPUFallback, "1"); err != nil {
			return fmt.Errorf("strict placement: %w", err)
		}
	}
	if d.Profile != "" {
		if err := so.EnableProfiling(d.Profile); err != nil {
			return fmt.Errorf("profiling: %w", err)
		}
	}
	return nil
}
