#!/usr/bin/env bash
# The lead's GPU batch (device tool): runs the given stages and packs every log and JSON into $OUT/results-<stages>.tgz
# (the device tool brings back at most 8 files), printing a short summary last.
#   bash tests/gpu/run-all.sh smoke devices moe
# Stages: smoke (bindings ABI check + GPU smoke: run-gpu.sh), devices (conformance + relocation: run-devices.sh),
#         moe (expert GEMM calibration + real MoE benchmark: run-moe-bench.sh),
#         e2e (the C++ serving example built with CUDA, bridge embedded, 2 GPUs: run-e2e.sh artifacts/e2e-gpu.tgz),
#         cpu (EPLB, OmniPlacement and script-compile benchmarks on the machine's idle cores: run-cpu-bench.sh).
set -u
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
raw=/tmp/eb-results
rm -rf "$raw"; mkdir -p "$raw"
here=$(cd "$(dirname "$0")" && pwd)
status=""
for stage in "$@"; do
  mkdir -p "$raw/$stage"
  start=$(date +%s)
  case "$stage" in
    smoke)   OUT="$raw/smoke" bash "$here/run-gpu.sh" artifacts/gpu.tgz > "$raw/smoke/stdout.log" 2>&1 ;;
    devices) OUT="$raw/devices" bash "$here/run-devices.sh" > "$raw/devices/stdout.log" 2>&1 ;;
    moe)     OUT="$raw" bash "$here/run-moe-bench.sh" > "$raw/moe/stdout.log" 2>&1 ;;
    e2e)     OUT="$raw/e2e" timeout 540 bash "$here/run-e2e.sh" artifacts/e2e-gpu.tgz > "$raw/e2e/stdout.log" 2>&1 ;;
    cpu)     OUT="$raw/cpu" bash "$here/run-cpu-bench.sh" > "$raw/cpu/stdout.log" 2>&1 ;;
    *) echo "unknown stage $stage" > "$raw/$stage/stdout.log"; false ;;
  esac
  rc=$?
  status="$status$stage: exit $rc in $(( $(date +%s) - start )) s\n"
done
name="results-$(IFS=-; echo "$*").tgz"
tar czf "$OUT/$name" -C "$raw" .
for stage in "$@"; do echo "===== $stage (tail)"; tail -n 25 "$raw/$stage/stdout.log"; done
printf "===== summary\n$status"
