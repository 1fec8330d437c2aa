package kernels

import (
	"bufio"
	"bytes"
	_ "embed"
	"fmt"
	"sort"
	"strings"

	"github.com/dartc/dartc/ir"
)

// Provider names a table.
const (
	CUDA = "cuda"
	CPU  = "cpu"
)

//go:embed cuda-ort-1.30.txt
var cudaText []byte

//go:embed cpu-ort-1.30.txt
var cpuText []byte

// Table lists, per op of the default ONNX domain, the element types an
// execution provider has kernels for.
type Table struct {
	Provider string
	ops      map[string]map[ir.DType]bool
}

var tables = map[string]*Table{CUDA: mustParse(CUDA, cudaText), CPU: mustParse(CPU, cpuText)}

// For returns the table of a provider (cuda or cpu).
func For(provider string) (*Table, error) {
	if t, ok := tables[provider]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("kernels: unknown provider %q (choose cuda or cpu)", provider)
}

// Has reports whether the provider has a kernel of op (default domain) for
// element type dt.
func (t *Table) Has(op string, dt ir.DType) bool { return t.ops[op][dt] }

// Types lists the element types the table gives op, sorted by name.
func (t *Table) Types(op string) []string {
	var out []string
	for dt := range t.ops[op] {
		out = append(out, dt.String())
	}
	sort.Strings(out)
	return out
}

// Parse reads a table: comment lines start with #, every other line is an
// op followed by element type names.
func Parse(provider string, text []byte) (*Table, error) {
	t := &Table{Provider: provider, ops: map[string]map[ir.DType]bool{}}
	sc := bufio.NewScanner(bytes.NewReader(text))
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		if len(f) < 2 {
			return nil, fmt.Errorf("kernels: %s table line %d: %q lists no types", provider, line, f[0])
		}
		if t.ops[f[0]] != nil {
			return nil, fmt.Errorf("kernels: %s table line %d: %s listed twice", provider, line, f[0])
		}
		set := map[ir.DType]bool{}
		for _, name := range f[1:] {
			dt, err := ir.ParseDType(name)
			if err != nil {
				return nil, fmt.Errorf("kernels: %s table line %d: %w", provider, line, err)
			}
			set[dt] = true
		}
		t.ops[f[0]] = set
	}
	return t, sc.Err()
}

func mustParse(provider string, text []byte) *Table {
	t, err := Parse(provider, text)
	if err != nil {
		panic(err)
	}
	return t
}
