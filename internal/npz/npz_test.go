package npz

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"strings"
	"testing"
)

// npy assembles a version-1 .npy file from a header dict and raw bytes, the
// way numpy.save lays it out (header padded with spaces to 64 bytes).
func npy(dict string, data []byte) []byte {
	h := dict
	for (10+len(h)+1)%64 != 0 {
		h += " "
	}
	h += "\n"
	var b bytes.Buffer
	b.WriteString("\x93NUMPY\x01\x00")
	binary.Write(&b, binary.LittleEndian, uint16(len(h)))
	b.WriteString(h)
	b.Write(data)
	return b.Bytes()
}

func le(vals ...any) []byte {
	var b bytes.Buffer
	for _, v := range vals {
		binary.Write(&b, binary.LittleEndian, v)
	}
	return b.Bytes()
}

func zipOf(t *testing.T, method uint16, files map[string][]byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for name, data := range files {
		f, err := w.CreateHeader(&zip.FileHeader{Name: name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		f.Write(data)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestReadDTypes(t *testing.T) {
	files := map[string][]byte{
		"f4.npy": npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }",
			le(float32(1.5), float32(-2.25), float32(0), float32(1e-3))),
		"f8.npy": npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", le(math.Pi, -1.0, 2.5)),
		// Half bits: 1.0, -2.0, the smallest subnormal 2⁻²⁴, 65504 (max).
		"f2.npy": npy("{'descr': '<f2', 'fortran_order': False, 'shape': (4,), }",
			le(uint16(0x3c00), uint16(0xc000), uint16(0x0001), uint16(0x7bff))),
		"i8.npy":     npy("{'descr': '<i8', 'fortran_order': False, 'shape': (1, 3), }", le(int64(-7), int64(0), int64(1<<40))),
		"i4.npy":     npy("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", le(int32(-1), int32(5))),
		"b1.npy":     npy("{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }", []byte{1, 0, 1}),
		"scalar.npy": npy("{'descr': '<i8', 'fortran_order': False, 'shape': (), }", le(int64(42))),
	}
	for _, method := range []uint16{zip.Store, zip.Deflate} {
		arrays, err := Read(zipOf(t, method, files))
		if err != nil {
			t.Fatal(err)
		}
		f4, _ := arrays["f4"].Float32()
		if want := []float32{1.5, -2.25, 0, 1e-3}; !equal(f4, want) || !equal(arrays["f4"].Shape, []int64{2, 2}) {
			t.Errorf("f4 = %v %v", f4, arrays["f4"].Shape)
		}
		f8, _ := arrays["f8"].Float64()
		if !equal(f8, []float64{math.Pi, -1, 2.5}) {
			t.Errorf("f8 = %v", f8)
		}
		f2, _ := arrays["f2"].Float64()
		if !equal(f2, []float64{1, -2, 1.0 / (1 << 24), 65504}) {
			t.Errorf("f2 = %v", f2)
		}
		i8, _ := arrays["i8"].Int64()
		if !equal(i8, []int64{-7, 0, 1 << 40}) {
			t.Errorf("i8 = %v", i8)
		}
		i4, _ := arrays["i4"].Int64()
		if !equal(i4, []int64{-1, 5}) {
			t.Errorf("i4 = %v", i4)
		}
		b1, _ := arrays["b1"].Bool()
		if !equal(b1, []bool{true, false, true}) {
			t.Errorf("b1 = %v", b1)
		}
		s, _ := arrays["scalar"].Int64()
		if len(arrays["scalar"].Shape) != 0 || !equal(s, []int64{42}) {
			t.Errorf("scalar = %v shape %v", s, arrays["scalar"].Shape)
		}
	}
}

func equal[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestReadErrors(t *testing.T) {
	cases := []struct {
		name, want string
		file       []byte
	}{
		{"fortran", "Fortran order", npy("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", le(float32(1)))},
		{"big-endian", "big-endian", npy("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", le(float32(1)))},
		{"dtype", "not supported", npy("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", make([]byte, 8))},
		{"short data", "needs 8 data bytes", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", le(float32(1)))},
		{"magic", "bad magic", []byte("PK not npy at all")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(zipOf(t, zip.Store, map[string][]byte{"x.npy": c.file}))
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "x.npy") {
				t.Fatalf("err = %v, want it to name x.npy and say %q", err, c.want)
			}
		})
	}
	if _, err := Read([]byte("not a zip")); err == nil || !strings.Contains(err.Error(), "not a zip") {
		t.Fatalf("err = %v", err)
	}
}

// TestReadNumpyArchive reads an archive numpy wrote (the runtime's golden
// fixture); the facts checked are stated in its PROVENANCE.md.
func TestReadNumpyArchive(t *testing.T) {
	b, err := os.ReadFile("../../runtime/testdata/static-scatter-bias-decoder/golden_io.npz")
	if err != nil {
		t.Fatal(err)
	}
	arrays, err := Read(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(arrays) != 26 {
		t.Errorf("%d arrays, want 26: %v", len(arrays), Names(arrays))
	}
	ids, _ := arrays["prefill_in.input_ids"].Int64()
	if !equal(ids, []int64{1, 2, 3, 4}) || !equal(arrays["prefill_in.input_ids"].Shape, []int64{1, 4}) {
		t.Errorf("prefill input_ids = %v %v, want [[1 2 3 4]]", ids, arrays["prefill_in.input_ids"].Shape)
	}
	ids, _ = arrays["decode_in.input_ids"].Int64()
	if !equal(ids, []int64{5}) {
		t.Errorf("decode input_ids = %v, want [[5]]", ids)
	}
	if l := arrays["prefill_out.logits"]; l.DType != "f4" || !equal(l.Shape, []int64{1, 4, 256}) {
		t.Errorf("prefill logits %s %v, want f4 [1 4 256]", l.DType, l.Shape)
	}
}
