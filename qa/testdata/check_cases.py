"""Checks cases.json against a Python implementation of the SQuAD / Search-R1
definitions (re with Unicode word boundaries, str.lower, string.punctuation,
str.split), so that the Go table's hand-computed values are confirmed by the
language those definitions are written in. Run: python3 check_cases.py
"""
import collections
import json
import re
import string


def normalize(s):
    s = s.lower()
    s = "".join(c for c in s if c not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def extract(response):
    found = list(re.finditer(r"<answer>(.*?)</answer>", response, re.DOTALL))
    if not found:
        return "", False
    return found[-1].group(1).strip(), True


def f1(pred, golds):
    best = 0.0
    p = normalize(pred).split()
    for g in golds:
        gt = normalize(g).split()
        same = sum((collections.Counter(p) & collections.Counter(gt)).values())
        if same:
            prec, rec = same / len(p), same / len(gt)
            best = max(best, 2 * prec * rec / (prec + rec))
    return best


def score(pred, golds):
    return {
        "em": float(any(normalize(pred) == normalize(g) for g in golds)),
        "f1": f1(pred, golds),
        "subem": float(any(normalize(g) in normalize(pred) for g in golds)),
    }


cases = json.load(open("cases.json", encoding="utf-8"))
bad = 0
for s, want in cases["normalize"]:
    if normalize(s) != want:
        bad += 1
        print("normalize", repr(s), "->", repr(normalize(s)), "table says", repr(want))
for resp, want, ok in cases["extract"]:
    if extract(resp) != (want, ok):
        bad += 1
        print("extract", repr(resp), "->", extract(resp), "table says", (want, ok))
for c in cases["score"]:
    got = score(c["pred"], c["golds"])
    if any(abs(got[k] - c[k]) > 1e-12 for k in got):
        bad += 1
        print("score", c, "->", got)
for c in cases["response"]:
    pred, ok = extract(c["response"])
    got = score(pred, c["golds"]) if ok else {"em": 0, "f1": 0, "subem": 0}
    if any(abs(got[k] - c[k]) > 1e-12 for k in got):
        bad += 1
        print("response", c, "->", got)
print("mismatches:", bad)
