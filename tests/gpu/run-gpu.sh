#!/usr/bin/env bash
# On the GPU machine (no .NET needed): unpack the bundle that build.ps1 publish-gpu made, run the ABI checks of the
# bindings against the installed CUDA and NCCL headers, then the GPU smoke program. Logs and JSON go to $OUT
# (default ./gpu-out). Usage, from the repository root:
#   bash tests/gpu/run-gpu.sh [artifacts/gpu.tgz]
# Exit status: non-zero when the ABI check or the smoke program failed (both always run).
set -u
bundle="${1:-artifacts/gpu.tgz}"
out="${OUT:-$PWD/gpu-out}"
mkdir -p "$out"
work="$(mktemp -d /tmp/eb-gpu.XXXXXX)"
tar xzf "$bundle" -C "$work" || { echo "cannot unpack $bundle" >&2; exit 2; }

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host: $(uname -srm)"
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=index,name,pci.bus_id,driver_version,memory.total --format=csv
    command -v nvidia-smi >/dev/null && nvidia-smi topo -m
    command -v nvcc >/dev/null && nvcc --version | tail -n 2
    grep -m1 -h 'define NCCL_VERSION_CODE' /usr/include/nccl.h 2>/dev/null
    gcc --version | head -n 1
} >"$out/machine.txt" 2>&1
cat "$out/machine.txt"

echo "==> abi-check (bindings/abi-check.sh)"
abi_script="$work/bindings/abi-check.sh"
[ -f "$abi_script" ] || abi_script="$(cd "$(dirname "$0")/../.." && pwd)/bindings/abi-check.sh"  # an older bundle: the tree's
bash "$abi_script" 2>&1 | tee "$out/abi-check.log"
abi=${PIPESTATUS[0]}

echo "==> gpu smoke"
# SMOKE_ARGS (e.g. "--bytes 1073741824 --iterations 10") is split into words on purpose.
# shellcheck disable=SC2086
NCCL_DEBUG="${NCCL_DEBUG:-WARN}" "$work/gpusmoke/ExpertBridge.GpuSmoke" --json "$out/gpu-smoke.json" ${SMOKE_ARGS:-} 2>&1 | tee "$out/gpu-smoke.log"
smoke=${PIPESTATUS[0]}

echo "abi-check exit $abi, gpu smoke exit $smoke; results in $out"
rm -rf "$work"
[ "$abi" -eq 0 ] && [ "$smoke" -eq 0 ]
