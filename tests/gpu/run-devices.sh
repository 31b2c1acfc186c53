#!/usr/bin/env bash
# Runs on the GPU machine (repo root, no .NET needed): device conformance on 1 and 2 GPUs and the relocation
# benchmarks beside plain driver copies. Needs artifacts/gpu.tgz from `build.ps1 publish-gpu` in the tree.
# Usage: bash tests/gpu/run-devices.sh      (writes logs and JSON under $OUT)
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0
tar xzf artifacts/gpu.tgz -C /tmp
BENCH=/tmp/gpubench/ExpertBridge.GpuBench
{ date -u; nvidia-smi --query-gpu=index,name,memory.total,driver_version,pci.bus_id --format=csv; nvidia-smi topo -m; } > "$OUT/devices-env.txt" 2>&1
ngpu=$(nvidia-smi -L | wc -l)
echo "== conformance, 1 GPU"
CUDA_VISIBLE_DEVICES=0 "$BENCH" conformance --json "$OUT/conformance-1gpu.json" 2>&1 | tee "$OUT/conformance-1gpu.log"
if [ "$ngpu" -ge 2 ]; then
  echo "== conformance, 2 GPUs"
  CUDA_VISIBLE_DEVICES=0,1 "$BENCH" conformance --json "$OUT/conformance-2gpu.json" 2>&1 | tee "$OUT/conformance-2gpu.log"
fi
echo "== relocation benchmarks"
CUDA_VISIBLE_DEVICES=0,1 "$BENCH" relocation --json "$OUT/relocation.json" 2>&1 | tee "$OUT/relocation.log"
