#!/usr/bin/env bash
# CPU benchmarks on a quiet machine without .NET (the GPU machine), on the private runtime of artifacts/e2e-gpu.tgz:
#   bash tests/gpu/run-cpu-bench.sh [artifacts/cpu-bench.tgz] [artifacts/e2e-gpu.tgz]
# Time limits add up to 580 s (one device call). Writes under $OUT: machine.txt, eplb.log and omniplacement.log (BenchmarkDotNet, in-process, pinned to one core),
# omni-steady.log (thread CPU time of the benchmark's OmniPlacement calls), scripting.log (script compile and swap).
# Run from the repository root (the scripting bench times policies/omniplacement.csx from the working tree).
set -uo pipefail
bench=${1:-artifacts/cpu-bench.tgz}
e2e=${2:-artifacts/e2e-gpu.tgz}
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
dir=$(mktemp -d /tmp/eb-cpu.XXXXXX)
tar xzf "$bench" -C "$dir" || { echo "cannot unpack $bench"; exit 2; }
mkdir -p "$dir/rt" && tar xzf "$e2e" -C "$dir/rt" ./dotnet || { echo "cannot unpack the runtime from $e2e"; exit 2; }
export DOTNET_ROOT="$dir/rt/dotnet" DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
core=${CPU_BENCH_CORE:-3}
{
  date -u; nproc; grep -m1 "model name" /proc/cpuinfo; uptime
} > "$OUT/machine.txt" 2>&1
cat "$OUT/machine.txt"
status=0
run() { local name=$1 limit=$2; shift 2; echo "==> $name"; (cd "$dir" && timeout "$limit" "$@") > "$OUT/$name.log" 2>&1 || { echo "$name failed: exit $?"; status=1; }; tail -n 14 "$OUT/$name.log"; }
run eplb 150 taskset -c "$core" ./benchmarks/ExpertBridge.Benchmarks --filter '*Eplb*' --inProcess
run omniplacement 200 taskset -c "$core" ./benchmarks/ExpertBridge.Benchmarks --filter '*OmniPlacement*' --inProcess
run omni-steady 90 env DOTNET_TieredCompilation=0 taskset -c "$core" ./evaluation/ExpertBridge.Policies.Evaluation steady --cases=drifting,switching,stable
repo=$PWD
run scripting 80 ./scripting-bench/ExpertBridge.Scripting.Bench --bench --runs 5 --script "$repo/policies/omniplacement.csx"
run scripting-sample 40 ./scripting-bench/ExpertBridge.Scripting.Bench --bench --runs 5
exit $status
