package npz

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/dartc/dartc/internal/float16"
)

// Array is one .npy array.
type Array struct {
	// DType is the .npy type code without byte order: f8, f4, f2, i8, i4 or b1.
	DType string
	Shape []int64
	// Data holds the elements, little-endian, C order.
	Data []byte
}

var itemSize = map[string]int{"f8": 8, "f4": 4, "f2": 2, "i8": 8, "i4": 4, "b1": 1}

// Len returns the number of elements.
func (a *Array) Len() int { return len(a.Data) / itemSize[a.DType] }

// Float64 returns the elements of a float array (f8, f4 or f2) as float64.
func (a *Array) Float64() ([]float64, error) {
	out := make([]float64, a.Len())
	switch a.DType {
	case "f8":
		for i := range out {
			out[i] = math.Float64frombits(binary.LittleEndian.Uint64(a.Data[8*i:]))
		}
	case "f4":
		for i := range out {
			out[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(a.Data[4*i:])))
		}
	case "f2":
		for i := range out {
			out[i] = float64(float16.ToFloat32(binary.LittleEndian.Uint16(a.Data[2*i:])))
		}
	default:
		return nil, fmt.Errorf("npz: Float64 of a %s array", a.DType)
	}
	return out, nil
}

// Float32 returns the elements of an f4 array.
func (a *Array) Float32() ([]float32, error) {
	if a.DType != "f4" {
		return nil, fmt.Errorf("npz: Float32 of a %s array", a.DType)
	}
	out := make([]float32, a.Len())
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(a.Data[4*i:]))
	}
	return out, nil
}

// Int64 returns the elements of an integer array (i8 or i4) as int64.
func (a *Array) Int64() ([]int64, error) {
	out := make([]int64, a.Len())
	switch a.DType {
	case "i8":
		for i := range out {
			out[i] = int64(binary.LittleEndian.Uint64(a.Data[8*i:]))
		}
	case "i4":
		for i := range out {
			out[i] = int64(int32(binary.LittleEndian.Uint32(a.Data[4*i:])))
		}
	default:
		return nil, fmt.Errorf("npz: Int64 of a %s array", a.DType)
	}
	return out, nil
}

// Bool returns the elements of a b1 array.
func (a *Array) Bool() ([]bool, error) {
	if a.DType != "b1" {
		return nil, fmt.Errorf("npz: Bool of a %s array", a.DType)
	}
	out := make([]bool, len(a.Data))
	for i, b := range a.Data {
		out[i] = b != 0
	}
	return out, nil
}

// Read parses an .npz archive held in memory.
func Read(data []byte) (map[string]*Array, error) {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("npz: not a zip archive: %w", err)
	}
	out := map[string]*Array{}
	for _, f := range zr.File {
		name := strings.TrimSuffix(f.Name, ".npy")
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("npz: %s: %w", f.Name, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("npz: %s: %w", f.Name, err)
		}
		a, err := ReadNPY(b)
		if err != nil {
			return nil, fmt.Errorf("npz: %s: %w", f.Name, err)
		}
		out[name] = a
	}
	return out, nil
}

// Names returns the array names of an archive in sorted order.
func Names(arrays map[string]*Array) []string {
	names := make([]string, 0, len(arrays))
	for n := range arrays {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

var (
	descrRe   = regexp.MustCompile(`'descr'\s*:\s*'([^']*)'`)
	fortranRe = regexp.MustCompile(`'fortran_order'\s*:\s*(True|False)`)
	shapeRe   = regexp.MustCompile(`'shape'\s*:\s*\(([^)]*)\)`)
)

// ReadNPY parses one .npy file (format versions 1, 2 and 3).
func ReadNPY(b []byte) (*Array, error) {
	if len(b) < 10 || string(b[:6]) != "\x93NUMPY" {
		return nil, fmt.Errorf("not a .npy file (bad magic)")
	}
	var hlen, start int
	switch b[6] {
	case 1:
		hlen, start = int(binary.LittleEndian.Uint16(b[8:])), 10
	case 2, 3:
		if len(b) < 12 {
			return nil, fmt.Errorf("truncated .npy header")
		}
		hlen, start = int(binary.LittleEndian.Uint32(b[8:])), 12
	default:
		return nil, fmt.Errorf(".npy format version %d not supported", b[6])
	}
	if start+hlen > len(b) {
		return nil, fmt.Errorf("truncated .npy header: %d bytes declared, %d present", hlen, len(b)-start)
	}
	header := string(b[start : start+hlen])
	body := b[start+hlen:]

	m := descrRe.FindStringSubmatch(header)
	if m == nil {
		return nil, fmt.Errorf("no descr in header %q", header)
	}
	descr := m[1]
	order, code := descr[:1], descr[1:]
	if _, ok := itemSize[code]; !ok || len(descr) < 2 {
		return nil, fmt.Errorf("dtype %q not supported (want <f8, <f4, <f2, <i8, <i4 or |b1)", descr)
	}
	if order == ">" {
		return nil, fmt.Errorf("dtype %q is big-endian; save the array as little-endian", descr)
	}
	if order != "<" && order != "|" && order != "=" {
		return nil, fmt.Errorf("dtype %q has an unknown byte order", descr)
	}
	m = fortranRe.FindStringSubmatch(header)
	if m == nil {
		return nil, fmt.Errorf("no fortran_order in header %q", header)
	}
	if m[1] == "True" {
		return nil, fmt.Errorf("array is in Fortran order; save it with numpy.ascontiguousarray first")
	}
	m = shapeRe.FindStringSubmatch(header)
	if m == nil {
		return nil, fmt.Errorf("no shape in header %q", header)
	}
	shape := []int64{}
	n := int64(1)
	for _, f := range strings.Split(m[1], ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		d, err := strconv.ParseInt(f, 10, 64)
		if err != nil || d < 0 {
			return nil, fmt.Errorf("bad dim %q in shape (%s)", f, m[1])
		}
		shape = append(shape, d)
		n *= d
	}
	size := n * int64(itemSize[code])
	if int64(len(body)) != size {
		return nil, fmt.Errorf("shape %v of %s needs %d data bytes, file has %d", shape, descr, size, len(body))
	}
	return &Array{DType: code, Shape: shape, Data: append([]byte(nil), body...)}, nil
}
