#!/usr/bin/env bash
# Runs on the GPU machine (no .NET there): calibrates the expert-GEMM table on this card, then runs the real MoE
# layer benchmark on every workload under artifacts/workloads (exported here by `expertbridge simulate
# --export-workload`). Results under $OUT/moe; compare with the model by re-exporting with --gemm-table $OUT/moe/gemm-fp8.json.
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT/moe"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
here=$(cd "$(dirname "$0")" && pwd)
nvcc -O2 -std=c++17 -gencode=arch=compute_90,code=sm_90 -o /tmp/gemm_calibrate "$here/gemm-calibrate/gemm_calibrate.cu" -lcublas -lcublasLt || exit 1
nvcc -O2 -std=c++17 -gencode=arch=compute_90,code=sm_90 -o /tmp/moe_bench "$here/moe-bench/moe_bench.cu" -lcublas -lcublasLt -lpthread || exit 1
/tmp/gemm_calibrate --dtype fp8 --out "$OUT/moe/gemm-fp8.json" > "$OUT/moe/gemm-fp8.log" 2>&1 || echo "calibrate failed"
tail -4 "$OUT/moe/gemm-fp8.log"
gpus=$(nvidia-smi -L | wc -l)
for w in artifacts/workloads/*.txt; do
  [ -e "$w" ] || { echo "no workloads"; break; }
  need=$(awk '/^shape/ {print $2; exit}' "$w")
  name=$(basename "$w" .txt)
  if [ "$need" -gt "$gpus" ]; then echo "skip $name: needs $need GPUs, $gpus visible"; continue; fi
  echo "== $name ($need GPUs)"
  timeout 240 /tmp/moe_bench --workload "$w" --dtype fp8 --out "$OUT/moe/$name.json" 2>&1 | tee "$OUT/moe/$name.log"
done
