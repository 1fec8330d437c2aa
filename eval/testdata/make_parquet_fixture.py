"""Cuts search_r1_nq_head12.parquet (and its expected values) from Search-R1's
nq_search/test.parquet with pyarrow, keeping the original schema, so that the
Go loader is tested on a small file from an independent parquet writer.

Run: python3 make_parquet_fixture.py /path/to/nq_search_test.parquet
"""
import json
import sys

import pyarrow.parquet as pq

table = pq.read_table(sys.argv[1]).slice(0, 12)
pq.write_table(table, "search_r1_nq_head12.parquet")
rows = table.to_pylist()
expected = [
    {"id": r["id"], "question": r["question"], "golden_answers": list(r["golden_answers"]),
     "data_source": r["data_source"], "target": list(r["reward_model"]["ground_truth"]["target"])}
    for r in rows
]
with open("search_r1_nq_head12.expected.json", "w", encoding="utf-8") as f:
    json.dump(expected, f, ensure_ascii=False, indent=1)
print(table.schema)
