"""Writes the Hugging Face `tokenizers` encodings that models/mini's Go
test compares dartc's tokenizer with: every segment of a few training
trajectories (the prompt with its ChatML special tokens, the policy's turns,
the observations) and strings that stress the pre-tokenizer."""

import argparse
import json

from tokenizers import Tokenizer

EXTRA = [
    "<|im_start|>user\nWhere was Domthaim Rasteis born?\n<|im_end|>\n<|im_start|>assistant\n",
    "<search> Domthaim </search><answer>Troukou</answer>",
    "</search>\n\n<information>Doc 1(Title: \"X\") y</information>\n\n",
    "<|endoftext|><|im_end|>text<|im_start|>",
    "Ünïcödé café naïve 日本語 😀 — tabs\tand   spaces\n\n\n  end ",
    "it's they'RE we'll 12345 3.14 a-b_c {\"k\": [1, 2]}",
    "",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--sft", required=True)
    ap.add_argument("-o", "--out", required=True)
    ap.add_argument("--rows", type=int, default=6)
    args = ap.parse_args()
    tok = Tokenizer.from_file(args.tokenizer)
    texts = []
    for i, line in enumerate(open(args.sft)):
        if i >= args.rows:
            break
        texts += [s["text"] for s in json.loads(line)["segments"]]
    texts += EXTRA
    cases = [{"text": t, "ids": tok.encode(t).ids} for t in texts]
    with open(args.out, "w") as f:
        json.dump({"tokenizer": "tokenizer.json", "cases": cases}, f, indent=0, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
