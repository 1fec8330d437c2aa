# Writes qwen2_reference.json: token ids that Hugging Face `tokenizers`
# (the Rust library, through its Python binding) gives for a set of texts
# with the full Qwen2 vocabulary. The Go tokenizer is tested against them.
#
#   python3 -m venv venv && venv/bin/pip install tokenizers==0.23.3
#   venv/bin/python gen_reference.py ../../../data/qwen2-tokenizer > qwen2_reference.json
import json
import sys

from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
from tokenizers import AddedToken

SPLIT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""

d = sys.argv[1]
tok = Tokenizer(models.BPE.from_file(d + "/vocab.json", d + "/merges.txt"))
tok.normalizer = normalizers.NFC()
tok.pre_tokenizer = pre_tokenizers.Sequence([
    pre_tokenizers.Split(Regex(SPLIT), behavior="isolated"),
    pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
])
tok.decoder = decoders.ByteLevel()
cfg = json.load(open(d + "/tokenizer_config.json"))
for key in sorted(cfg["added_tokens_decoder"], key=int):
    a = cfg["added_tokens_decoder"][key]
    at = AddedToken(a["content"], normalized=False, special=a["special"])
    if a["special"]:
        tok.add_special_tokens([at])
    else:
        tok.add_tokens([at])
    assert tok.token_to_id(a["content"]) == int(key)

case = open("case.txt", encoding="utf-8").read()
texts = [
    case,
    "Hello world! It's a test. I'M here, you'RE there; we'll've done'd.",
    "  leading and trailing spaces   ",
    "tabs\tand\r\nwindows\r\n\r\nline breaks\n\n\n",
    "numbers 1234567 and 3.14159, $100,000.00",
    "中文分词测试，你好世界！日本語のテキスト。한국어 텍스트",
    "cafe\u0301 e\u0301le\u0300ve NFD input",
    "emoji 😀🎉👍🏽 and symbols ©®™ — “quotes” …",
    "<think>reason</think>\n<search> who wrote hamlet </search>\n\n<information>Doc 1(Title: \"Hamlet\") text\n</information>\n\n<answer> Shakespeare </answer>",
    "code: if (x != y) { return a->b[0]; } // comment\n    indented\n\tline",
    "'s 'S 't 're 've 'm 'll 'd 'x ''",
    "مرحبا بالعالم Привет мир Γειά σου κόσμε",
    "a" * 300 + " " + "!" * 120 + "\n" + " " * 200,
    "x\u00a0y\u2003z\u3000w \u0085v",
    # Runs of more than 30 combining marks: NFC orders and composes the
    # whole run (Go's norm would cut it with a U+034F every 30 marks).
    "a" + "\u0301" * 40 + "b",
    "e" + "\u0316\u0301\u0334\u0327" * 12 + " zalgo\u0300\u0323" * 3,
    "\u1100\u1161" + "\u0301" * 35 + "\u11a8 hangul",
]
out = []
for t in texts:
    ids = tok.encode(t, add_special_tokens=False).ids
    out.append({"text": t, "ids": ids})
json.dump({"tokenizers_version": __import__("tokenizers").__version__, "cases": out}, sys.stdout, ensure_ascii=True, indent=0)
sys.stdout.write("\n")
