package main

import (
	"fmt"
	"strings"

	"github.com/dartc/dartc/peft"
	"github.com/urfave/cli/v2"
)

func init() { register(exportPEFTCommand) }

var (
	exportPEFTRoleFlag = &cli.StringFlag{
		Name: "role", Usage: "adapter role to export: reason or tool (any role named in the file's metadata)",
		Required: true,
	}
	exportPEFTBaseFlag = &cli.StringFlag{
		Name:  "base-model",
		Usage: "base_model_name_or_path to write into adapter_config.json: the Hugging Face `HF_ID` (Qwen/Qwen2.5-3B-Instruct) PEFT and vLLM load the base from (default: the compiled source's path)",
	}
	exportPEFTOutputFlag = &cli.StringFlag{
		Name: "output", Aliases: []string{"o"}, Usage: "PEFT adapter directory to create (must not exist or be empty)",
		Required: true,
	}
)

var exportPEFTCommand = &cli.Command{
	Name:      "export-peft",
	Usage:     "export one role's LoRA adapter as a Hugging Face PEFT adapter directory",
	ArgsUsage: "ADAPTERS.safetensors",
	Description: `Writes adapter_config.json and adapter_model.safetensors for one role of a dual adapter
file (dartc compile's adapters.safetensors or a training checkpoint). A [in, r] and B [r, out]
are transposed to PEFT's lora_A [r, in] and lora_B [out, r] under the keys
base_model.model.<module>.lora_{A,B}.weight, so PeftModel.from_pretrained or vLLM's LoRA
loader can apply the adapter to every token. The directory appears complete or not at all.`,
	Flags: []cli.Flag{exportPEFTRoleFlag, exportPEFTOutputFlag, exportPEFTBaseFlag},
	Action: func(c *cli.Context) error {
		if c.NArg() != 1 {
			return fmt.Errorf("export-peft: want one adapters file, got %d arguments (flags go before it: dartc export-peft --role tool -o DIR FILE)", c.NArg())
		}
		src, role, out := c.Args().First(), c.String(exportPEFTRoleFlag.Name), c.String(exportPEFTOutputFlag.Name)
		base := strings.TrimSpace(c.String(exportPEFTBaseFlag.Name))
		if c.IsSet(exportPEFTBaseFlag.Name) && base == "" {
			return fmt.Errorf("export-peft: --base-model is empty: give a Hugging Face model id such as Qwen/Qwen2.5-3B-Instruct")
		}
		if err := peft.ExportFor(src, role, out, base); err != nil {
			return err
		}
		fmt.Fprintf(c.App.Writer, "wrote %s (role %s from %s)\n", out, role, src)
		return nil
	},
}
