package main

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	"github.com/dartc/dartc/internal/flaglist"
	"github.com/dartc/dartc/ir"
	"github.com/dartc/dartc/passes"
	"github.com/urfave/cli/v2"
)

func init() { register(inspectCommand) }

var inspectCommand = &cli.Command{
	Name:      "inspect",
	Usage:     "describe an ONNX model: inputs, outputs, opsets, ops, LoRA targets, external data",
	ArgsUsage: "MODEL.onnx",
	Description: `Prints the model's inputs and outputs with shapes and dtypes, its opset imports, a
histogram of op types, the linears dartc would adapt (module, form, shapes, and how each was
identified), and its external data files. Weight bytes are not read. With --json, prints one
object with the keys inputs, outputs, opsets, ops, targets and external_data.`,
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "json", Usage: "print one JSON object"},
		&cli.StringFlag{Name: "targets", Value: "q,k,v,o,gate,up,down", Usage: "comma-separated projections to look for (q,k,v,o,gate,up,down)"},
	},
	Action: func(c *cli.Context) error {
		if c.NArg() != 1 {
			return fmt.Errorf("inspect: want one MODEL.onnx argument, got %d", c.NArg())
		}
		// A misspelt target is the user's mistake, not the model's: refuse
		// it before loading, rather than report it as a finding.
		targets, err := inspectTargets(c.String("targets"))
		if err != nil {
			return err
		}
		m, err := ir.Load(c.Args().First())
		if err != nil {
			return err
		}
		rep := describe(m, targets)
		if c.Bool("json") {
			enc := json.NewEncoder(c.App.Writer)
			enc.SetIndent("", "  ")
			return enc.Encode(rep)
		}
		printReport(c.App.Writer, rep)
		return nil
	},
}

// inspectTargets reads --targets: known projection kinds, at least one.
func inspectTargets(list string) ([]string, error) {
	targets := flaglist.Split(list)
	known := strings.Join(passes.DefaultTargets, ",")
	if len(targets) == 0 {
		return nil, fmt.Errorf("inspect: --targets %q names no projection; pass some of %s (the default is all of them)", list, known)
	}
	for _, t := range targets {
		if !slices.Contains(passes.DefaultTargets, t) {
			return nil, fmt.Errorf("inspect: --targets: unknown target %q; choose from %s", t, known)
		}
	}
	return targets, nil
}

type inspectValue struct {
	Name  string `json:"name"`
	DType string `json:"dtype"`
	Shape string `json:"shape"`
}

type inspectTarget struct {
	Module   string `json:"module"`
	Kind     string `json:"kind"`
	Layer    int    `json:"layer"`
	Form     string `json:"form"`
	In       int64  `json:"in"`
	Out      int64  `json:"out"`
	Node     string `json:"node"`
	Weight   string `json:"weight"`
	Evidence string `json:"evidence"`
}

type inspectReport struct {
	IRVersion    int64            `json:"ir_version"`
	Producer     string           `json:"producer"`
	Opsets       map[string]int64 `json:"opsets"`
	Inputs       []inspectValue   `json:"inputs"`
	Outputs      []inspectValue   `json:"outputs"`
	Ops          map[string]int   `json:"ops"`
	Nodes        int              `json:"nodes"`
	Initializers int              `json:"initializers"`
	Targets      []inspectTarget  `json:"targets"`
	TargetError  string           `json:"target_error,omitempty"`
	ExternalData []string         `json:"external_data"`
}

func describe(m *ir.Model, targets []string) *inspectReport {
	rep := &inspectReport{IRVersion: m.IRVersion, Producer: m.ProducerName + " " + m.ProducerVersion,
		Opsets: map[string]int64{}, Ops: map[string]int{}, Nodes: len(m.Graph.Nodes),
		Initializers: len(m.Graph.Initializers), Targets: []inspectTarget{}, ExternalData: []string{}}
	for _, o := range m.Opsets {
		d := o.Domain
		if d == "" {
			d = "ai.onnx"
		}
		rep.Opsets[d] = o.Version
	}
	val := func(v *ir.ValueInfo) inspectValue {
		iv := inspectValue{Name: v.Name, Shape: "?"}
		if v.Type != nil {
			iv.DType = v.Type.DType.String()
			s := v.Type.String()
			iv.Shape = s[len(iv.DType):]
		}
		return iv
	}
	for _, v := range m.Graph.Inputs {
		rep.Inputs = append(rep.Inputs, val(v))
	}
	for _, v := range m.Graph.Outputs {
		rep.Outputs = append(rep.Outputs, val(v))
	}
	for _, n := range m.Graph.Nodes {
		op := n.OpType
		if n.Domain != "" {
			op = n.Domain + ":" + op
		}
		rep.Ops[op]++
	}
	files := map[string]bool{}
	for _, t := range m.Graph.Initializers {
		if t.External != nil {
			files[t.External.Location] = true
		}
	}
	for f := range files {
		rep.ExternalData = append(rep.ExternalData, f)
	}
	sort.Strings(rep.ExternalData)
	s := passes.NewState(m, passes.Options{Targets: targets})
	if err := passes.MatchTargets(s); err != nil {
		rep.TargetError = err.Error()
	}
	for _, t := range s.Targets {
		rep.Targets = append(rep.Targets, inspectTarget{Module: t.Module, Kind: t.Kind, Layer: t.Layer, Form: t.Form,
			In: t.In, Out: t.Out, Node: t.Node.Name, Weight: t.Weight.Name, Evidence: t.Evidence})
	}
	return rep
}

func printReport(w io.Writer, r *inspectReport) {
	fmt.Fprintf(w, "ir_version %d, producer %s\nopsets:", r.IRVersion, r.Producer)
	for _, d := range sortedKeys(r.Opsets) {
		fmt.Fprintf(w, " %s:%d", d, r.Opsets[d])
	}
	fmt.Fprintf(w, "\ninputs:\n")
	for _, v := range r.Inputs {
		fmt.Fprintf(w, "  %-40s %s%s\n", v.Name, v.DType, v.Shape)
	}
	fmt.Fprintf(w, "outputs:\n")
	for _, v := range r.Outputs {
		fmt.Fprintf(w, "  %-40s %s%s\n", v.Name, v.DType, v.Shape)
	}
	fmt.Fprintf(w, "ops (%d nodes, %d initializers):\n", r.Nodes, r.Initializers)
	for _, op := range sortedKeys(r.Ops) {
		fmt.Fprintf(w, "  %-40s %d\n", op, r.Ops[op])
	}
	fmt.Fprintf(w, "targets (%d):\n", len(r.Targets))
	for _, t := range r.Targets {
		fmt.Fprintf(w, "  %-36s %-17s [%d→%d] by %s (%s)\n", t.Module, t.Form, t.In, t.Out, t.Evidence, t.Node)
	}
	if r.TargetError != "" {
		fmt.Fprintf(w, "  %s\n", r.TargetError)
	}
	if len(r.ExternalData) > 0 {
		fmt.Fprintf(w, "external data: %v\n", r.ExternalData)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
