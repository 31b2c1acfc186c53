#!/usr/bin/env bash
# Device conformance and relocation benchmarks on the GPU machine (no .NET there). From the repository root:
#   bash tests/gpu/run-devices.sh [artifacts/gpu.tgz]        (the bundle from `dotnet pwsh ./build.ps1 publish-gpu`)
# Stages (each logs to $OUT/<stage>.log and writes $OUT/<stage>.json; a failing stage does not stop the others):
#   conformance-1gpu, conformance-2gpu, ipc (device memory shared by two processes), relocation (within a device,
#   peer, DeepSeek-V3-sized), cross-process (two processes over NCCL), ptx (nvcc builds the busy kernels), compute
#   (slowdown of a busy stream beside relocation: within a device at several bandwidth caps, and peer).
# Works with 1 GPU (two-GPU stages are skipped) or more (the first two are used). Every stage has a time limit; the
# limits add up to 385 s, so the whole run stays under 7 minutes. Prints a summary table last; exit status 1 when a
# stage failed or timed out.
# GPUBENCH_ARGS is appended to every GpuBench call (for example "--expert-mb 8" for a quick run; "--emulated" checks
# this script on a machine without a GPU, with CUDA_VISIBLE_DEVICES=0,1 and the emulator in artifacts/native).
set -uo pipefail

bundle="${1:-artifacts/gpu.tgz}"
OUT="${OUT:-$PWD/gpu-out}"
mkdir -p "$OUT"
# NVLink SHARP (multicast) stays off on these machines; NCCL speaks up only on warnings.
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
export NCCL_DEBUG="${NCCL_DEBUG:-WARN}"

work="$(mktemp -d /tmp/eb-devices.XXXXXX)"
trap 'rm -rf "$work"' EXIT
declare -a names=() states=() times=() notes=()

record() { names+=("$1"); states+=("$2"); times+=("$3"); notes+=("$4"); }

# run_stage NAME LIMIT_S COMMAND...: runs with a time limit, logs to $OUT/NAME.log, records PASS/FAIL/TIMEOUT.
run_stage() {
    local name="$1" limit="$2"; shift 2
    echo "==> $name (limit ${limit}s): $*"
    local start=$SECONDS
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$OUT/$name.log"
    local rc=${PIPESTATUS[0]}
    local took=$((SECONDS - start)) state=PASS note="exit 0"
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then state=TIMEOUT; note="killed after ${limit}s"
    elif [ "$rc" -ne 0 ]; then state=FAIL; note="exit $rc, see $name.log"; fi
    record "$name" "$state" "$took" "$note"
}

skip_stage() { echo "==> $1: skipped ($2)"; record "$1" SKIP 0 "$2"; }

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "host: $(uname -srm)"
    nvidia-smi --query-gpu=index,name,pci.bus_id,driver_version,memory.total --format=csv 2>&1
    nvidia-smi topo -m 2>&1
    command -v nvcc >/dev/null && nvcc --version | tail -n 2
    grep -h -m3 -E 'define NCCL_(MAJOR|MINOR|PATCH)' /usr/include/nccl.h 2>/dev/null
} >"$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"

# GPUs: CUDA_VISIBLE_DEVICES if set, else every GPU nvidia-smi lists.
if [ -n "${CUDA_VISIBLE_DEVICES:-}" ]; then
    IFS=',' read -r -a gpus <<<"$CUDA_VISIBLE_DEVICES"
else
    mapfile -t gpus < <(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | tr -d ' ')
fi
echo "GPUs: ${#gpus[@]} (${gpus[*]:-none})"

bench="$work/gpubench/ExpertBridge.GpuBench"
read -r -a extra <<<"${GPUBENCH_ARGS:-}"
if ! tar xzf "$bundle" -C "$work" 2>"$OUT/unpack.log" || [ ! -x "$bench" ]; then
    record unpack FAIL 0 "cannot unpack $bundle or no gpubench in it (build.ps1 publish-gpu)"
elif [ "${#gpus[@]}" -eq 0 ]; then
    record gpus FAIL 0 "no GPU visible"
else
    one="${gpus[0]}"
    CUDA_VISIBLE_DEVICES="$one" run_stage conformance-1gpu 50 "$bench" conformance --json "$OUT/conformance-1gpu.json" "${extra[@]}"
    if [ "${#gpus[@]}" -ge 2 ]; then
        two="${gpus[0]},${gpus[1]}"
        CUDA_VISIBLE_DEVICES="$two" run_stage conformance-2gpu 50 "$bench" conformance --json "$OUT/conformance-2gpu.json" "${extra[@]}"
    else
        two="$one"
        skip_stage conformance-2gpu "one GPU"
    fi
    CUDA_VISIBLE_DEVICES="$one" run_stage ipc 30 "$bench" ipc --json "$OUT/ipc.json" --timeout-s 20 "${extra[@]}"
    CUDA_VISIBLE_DEVICES="$two" run_stage relocation 75 "$bench" relocation --json "$OUT/relocation.json" "${extra[@]}"
    if [ "${#gpus[@]}" -ge 2 ]; then
        CUDA_VISIBLE_DEVICES="$two" run_stage cross-process 60 "$bench" cross-process --json "$OUT/cross-process.json" --timeout-s 45 "${extra[@]}"
    else
        skip_stage cross-process "one GPU"
    fi
    kernels="$work/kernels/busy_kernels.cu"
    [ -f "$kernels" ] || kernels="tests/gpu/busy/busy_kernels.cu"
    if command -v nvcc >/dev/null && [ -f "$kernels" ]; then
        run_stage ptx 30 nvcc -ptx -arch=compute_90 -o "$work/busy.ptx" "$kernels"
        if [ -f "$work/busy.ptx" ]; then
            CUDA_VISIBLE_DEVICES="$two" run_stage compute 90 "$bench" compute --ptx "$work/busy.ptx" --json "$OUT/compute.json" "${extra[@]}"
        else
            skip_stage compute "no PTX (the ptx stage failed)"
        fi
    else
        skip_stage ptx "no nvcc or no busy_kernels.cu"
        skip_stage compute "no PTX"
    fi
fi

echo
echo "summary ($OUT):"
printf '%-18s %-8s %6s  %s\n' stage result secs note
for i in "${!names[@]}"; do
    printf '%-18s %-8s %6s  %s\n' "${names[$i]}" "${states[$i]}" "${times[$i]}" "${notes[$i]}"
done | tee "$OUT/summary.txt"
grep -qE ' (FAIL|TIMEOUT) ' "$OUT/summary.txt" && exit 1
exit 0
