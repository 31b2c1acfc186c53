#!/usr/bin/env bash
# The end-to-end example on the GPU machine (no .NET there): unpacks artifacts/e2e-gpu.tgz (tests/gpu/publish-e2e.ps1),
# builds examples/cpp-server with CUDA (cmake + nvcc) against the bundled shim, and runs it on 2 GPUs with the bundled
# private .NET runtime (DOTNET_ROOT): DeepSeek-V3-sized experts, the bridge relocating with peer copies (backend cuda)
# while serving, the policy file rewritten mid-run. Writes summary.json, run.log and build.log to $OUT.
#   bash tests/gpu/run-e2e.sh artifacts/e2e-gpu.tgz
# Environment: E2E_MODE=cuda|host (host: the CI mode, to prove the bundle where there is no GPU), E2E_STEPS, E2E_DEVICES,
#   E2E_DIR (unpack folder, default /tmp/eb-e2e), E2E_ARGS (extra cpp-server arguments), E2E_POLICY (a script of the
#   bundled policies/, e.g. omniplacement.csx, that the program writes and rewrites instead of EPLB).
set -euo pipefail
archive=${1:-artifacts/e2e-gpu.tgz}
OUT=${OUT:-/tmp/out}
mode=${E2E_MODE:-cuda}
dir=${E2E_DIR:-/tmp/eb-e2e}
mkdir -p "$OUT"
rm -rf "$dir"; mkdir -p "$dir"
tar xzf "$archive" -C "$dir"

export DOTNET_ROOT="$dir/dotnet"            # the shim's hostfxr lookup uses it; no system .NET is needed
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
cuda_flag=ON; [ "$mode" = host ] && cuda_flag=OFF
{
  cmake -S "$dir/examples/cpp-server" -B "$dir/build" -DCMAKE_BUILD_TYPE=Release -DEB_OUTPUT_DIR="$dir/native" -DEB_EXAMPLE_CUDA=$cuda_flag
  cmake --build "$dir/build" --parallel 8
} > "$OUT/build.log" 2>&1 || { tail -n 40 "$OUT/build.log"; exit 1; }
if [ "$mode" = cuda ] && ! grep -q "CUDA mode on" "$OUT/build.log"; then
  echo "run-e2e: CMake found no CUDA compiler (see build.log)"; exit 1
fi

work="$dir/work"; mkdir -p "$work"
policy_args=()
if [ -n "${E2E_POLICY:-}" ]; then
  cp -r "$dir/policies/lib" "$work/"        # the script's #load paths resolve next to the watched file
  policy_args=(--policy-source "$dir/policies/$E2E_POLICY")
fi
if [ "$mode" = cuda ]; then
  command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=index,name,memory.total --format=csv > "$OUT/gpus.csv" || true
  # 4 layers x 32 experts on 2 GPUs x 20 slots; experts of DeepSeek-V3's shape (7168 x 2048, bf16: 84 MiB each),
  # 2048 tokens per step, top-8: hot experts an order of magnitude above cold, a workload shift every 1000 steps.
  set -- --backend cuda --devices "${E2E_DEVICES:-2}" --slots-per-device 20 --layers 4 --experts 32 --tokens 2048 --top-k 8 \
         --steps "${E2E_STEPS:-2400}" --window 200 --shift-every 1200 --rewrite-at 600
else
  set -- --backend host --steps "${E2E_STEPS:-1500}"
fi
# shellcheck disable=SC2086
EXPERTBRIDGE_SUMMARY="$OUT/summary.json" "$dir/native/examples/cpp-server" --policy "$work/policy.csx" "${policy_args[@]}" "$@" ${E2E_ARGS:-} \
  > "$OUT/run.log" 2>&1 && rc=0 || rc=$?
tail -n 6 "$OUT/run.log"
[ -f "$OUT/summary.json" ] && cat "$OUT/summary.json"
exit $rc
