"""Writes the /retrieve response bodies that Search-R1's FastAPI server sends
for fixed passages, for dartc's byte-compatibility test.

FastAPI renders a returned dict with starlette's JSONResponse.render:
json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None,
separators=(",", ":")).encode("utf-8"). Run: python3 gen_golden.py
"""
import json

passages = [
    ("0", "\"Evan Morris\"\nEvan L. Morris (January 26, 1977 \u2013 July 9, 2015) was a lobbyist.", 12.5),
    ("17", "\"Caf\u00e9 <&>\"\nTabs\tand \\backslashes\\ and \"quotes\" and \x01\x1f\x7f and \u2028\u2029 and \U0001F600", 1.0),
    ("x-2", "\"T\"\n", 0.1 + 0.2),
    ("3", "no title line", 1e-05),
    ("4", "\"Big\"\nb", 1.2345678901234567e17),
    ("5", "\"Sci\"\ns", 1e16),
    ("6", "\"Pos\"\np", 1e15),
    ("7", "\"Small\"\ns", 0.0001),
    ("8", "\"Tiny\"\nt", 1.5e-7),
    ("9", "\"Neg\"\nn", -2.25),
    ("10", "\"Zero\"\nz", 0.0),
    ("11", "\"F32\"\nf", 0.8123456835746765),
]

def render(content):
    return json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode("utf-8")

with_scores = {"result": [[{"document": {"id": i, "contents": c}, "score": s} for i, c, s in passages[:6]],
                          [{"document": {"id": i, "contents": c}, "score": s} for i, c, s in passages[6:]],
                          []]}
without = {"result": [[{"id": i, "contents": c} for i, c, _ in passages[:6]],
                      [{"id": i, "contents": c} for i, c, _ in passages[6:]],
                      []]}
open("response_scores.golden.json", "wb").write(render(with_scores))
open("response_noscores.golden.json", "wb").write(render(without))

# The request body Search-R1's trainer sends: requests.post(url, json=payload)
# encodes with json.dumps(payload) (default separators, ensure_ascii=True).
payload = {"queries": ["who wrote hamlet", "Caf\u00e9 \"quoted\" \\ \n\t\x01 \u2013 \U0001F600", ""], "topk": 3, "return_scores": True}
open("request.golden.json", "wb").write(json.dumps(payload).encode("utf-8"))
