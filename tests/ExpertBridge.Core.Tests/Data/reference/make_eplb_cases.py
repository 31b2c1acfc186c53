"""Regenerates ../eplb_reference_cases.json from DeepSeek's reference implementation (deepseek-ai/EPLB, eplb.py,
not vendored here): every case's phy2log and logcnt as rebalance_experts returns them on CPU.

    python3 make_eplb_cases.py /path/to/EPLB        # the directory that holds eplb.py; needs torch
"""
import json
import random
import sys

sys.path.insert(0, sys.argv[1])
import torch  # noqa: E402
from eplb import rebalance_experts  # noqa: E402

rng = random.Random(7)


def zipf(layers, experts, tokens, skew):
    rows = []
    for _ in range(layers):
        ranks = list(range(1, experts + 1))
        rng.shuffle(ranks)
        rows.append([float(int(tokens / r ** skew)) for r in ranks])
    return rows


def small_ints(layers, experts, high):
    return [[float(rng.randrange(high)) for _ in range(experts)] for _ in range(layers)]


readme = [[90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86], [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27]]
cases = [
    ("readme", [[float(x) for x in r] for r in readme], 16, 4, 2, 8),
    ("flashlb", [[600.0, 560, 120, 120, 20, 10, 10, 10]], 16, 1, 1, 8),
    ("v3-prefill-zipf", zipf(3, 256, 200000, 1.1), 288, 8, 4, 32),
    ("v3-prefill-ties", small_ints(3, 256, 6), 288, 8, 4, 32),
    ("v3-ep64-zipf", zipf(3, 256, 200000, 0.9), 320, 8, 8, 64),
    ("v3-ep64-global-zipf", zipf(3, 256, 300000, 1.2), 320, 8, 16, 64),
    ("v3-ep64-global-ties", small_ints(3, 256, 4), 320, 8, 16, 64),
    ("global-small", small_ints(4, 64, 10), 96, 4, 8, 16),
    ("one-slot-per-device", zipf(2, 16, 1000, 1.0), 16, 4, 2, 16),
    ("zero-layer", [[0.0] * 32, [5.0] * 32], 48, 4, 2, 8),
    ("fractional", [[rng.random() * 100 for _ in range(64)] for _ in range(3)], 80, 8, 2, 16),
]
out = []
for name, load, replicas, groups, nodes, devices in cases:
    phy2log, _, logcnt = rebalance_experts(torch.tensor(load, dtype=torch.float64), replicas, groups, nodes, devices)
    out.append({"name": name, "replicas": replicas, "groups": groups, "nodes": nodes, "devices": devices,
                "load": load, "phy2log": phy2log.tolist(), "logcnt": logcnt.tolist()})
with open("../eplb_reference_cases.json", "w") as f:
    json.dump({"source": f"deepseek-ai/EPLB eplb.py rebalance_experts, torch {torch.__version__} CPU", "cases": out},
              f, separators=(",", ":"))
print(f"{len(out)} cases written")
