#!/usr/bin/env bash
# Runs on the GPU machine (no .NET there): probes the environment and calibrates the expert-GEMM table.
# Usage (repo root on the GPU machine): bash tests/gpu/run-calibrate.sh   (writes under $OUT)
set -uo pipefail
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
{
  echo "== date"; date -u
  echo "== nvidia-smi"; nvidia-smi --query-gpu=index,name,memory.total,driver_version,pci.bus_id --format=csv
  echo "== topo"; nvidia-smi topo -m
  echo "== nvcc"; nvcc --version | tail -2
  echo "== gcc"; gcc --version | head -1; cmake --version | head -1
  echo "== headers"; ls -la /usr/local/cuda/include/cuda.h /usr/include/nccl.h 2>&1
  grep -m1 -n "define CUDA_VERSION" /usr/local/cuda/include/cuda.h
  grep -n "define NCCL_MAJOR\|define NCCL_MINOR\|define NCCL_PATCH" /usr/include/nccl.h
  echo "== libs"; ldconfig -p | grep -E "libcuda.so|libnccl|libcublas" | head
  echo "== cpu"; nproc; grep -m1 "model name" /proc/cpuinfo
} > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"
src=tests/gpu/gemm-calibrate/gemm_calibrate.cu
nvcc -O2 -std=c++17 -gencode=arch=compute_90,code=sm_90 -o /tmp/gemm_calibrate "$src" -lcublas -lcublasLt 2>&1 | tail -20
for dt in bf16 fp8; do
  echo "== calibrate $dt"
  /tmp/gemm_calibrate --dtype $dt --out "$OUT/gemm-$dt.json" 2>&1 | tee "$OUT/gemm-$dt.log"
done
