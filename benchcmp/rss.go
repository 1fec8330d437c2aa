package benchcmp

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// procStatusKiB reads a "Field:   123 kB" line of /proc/self/status.
func procStatusKiB(field string) (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("benchcmp: resident memory: %w (needs Linux /proc)", err)
	}
	return parseStatusKiB(b, field)
}

func parseStatusKiB(status []byte, field string) (int64, error) {
	for _, line := range bytes.Split(status, []byte("\n")) {
		rest, ok := bytes.CutPrefix(line, []byte(field+":"))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) == 0 {
			break
		}
		v, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("benchcmp: /proc/self/status %s: %q is not a number", field, f[0])
		}
		return v, nil
	}
	return 0, fmt.Errorf("benchcmp: /proc/self/status has no %s line", field)
}

// RSSKiB is the process's resident set now; PeakRSSKiB its high-water
// mark (VmHWM) since start or the last ResetPeakRSS.
func RSSKiB() (int64, error)     { return procStatusKiB("VmRSS") }
func PeakRSSKiB() (int64, error) { return procStatusKiB("VmHWM") }

// ResetPeakRSS sets the high-water mark to the current resident set
// (Linux: "5" to /proc/self/clear_refs), so a later PeakRSSKiB covers only
// what ran since.
func ResetPeakRSS() error {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("benchcmp: reset the peak RSS: %w", err)
	}
	return nil
}
