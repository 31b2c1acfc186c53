"""Regenerates ../torch_sort_cases.json: the index order libstdc++'s std::sort gives (key descending), which is
what PyTorch's CPU Tensor.sort(descending=True) uses, and which TorchCpuSort must reproduce.

    g++ -O2 -std=c++17 -o sortref sortref.cpp && python3 make_sort_cases.py [--check-torch]

--check-torch also compares every default-depth case with torch (CPU) and fails on any difference.
"""
import json
import random
import subprocess
import sys

random.seed(20260101)
cases = []
for n in [1, 2, 5, 16, 17, 18, 31, 64, 72, 100, 257, 320]:
    for distinct in (2, 5, 1000):
        cases.append((-1, [float(random.randrange(distinct)) for _ in range(n)]))
cases.append((-1, [float(i) for i in range(100)]))
cases.append((-1, [float(100 - i) for i in range(100)]))
cases.append((-1, [7.0] * 90))
cases.append((-1, [random.random() * 10 for _ in range(200)]))
# Explicit depth limits drive the heapsort fallback.
for depth in (0, 1, 2):
    for n in (17, 40, 101, 320):
        cases.append((depth, [float(random.randrange(6)) for _ in range(n)]))

text = "".join(f"{d} {len(k)} " + " ".join(repr(x) for x in k) + "\n" for d, k in cases)
lines = subprocess.run(["./sortref"], input=text, capture_output=True, text=True, check=True).stdout.splitlines()
result = []
for (depth, keys), line in zip(cases, lines):
    order = [int(t) for t in line.split()]
    if depth < 0 and "--check-torch" in sys.argv:
        import torch
        expected = torch.tensor(keys, dtype=torch.float32).sort(descending=True).indices.tolist()
        assert expected == order, f"torch and libstdc++ disagree for n={len(keys)}"
    result.append({"depth": depth, "keys": keys, "order": order})

with open("../torch_sort_cases.json", "w") as f:
    json.dump({"source": "libstdc++ std::sort (depth -1) or __introsort_loop with that depth limit, comparator a > b "
                         "on (float32 key, index); default-depth cases checked against torch CPU Tensor.sort",
               "cases": result}, f, separators=(",", ":"))
print(f"{len(result)} cases written")
