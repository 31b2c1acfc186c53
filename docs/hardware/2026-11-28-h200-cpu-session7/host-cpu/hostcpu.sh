#!/usr/bin/env bash
# A long-lived OmniPlacement instance per cadence, one pinned core: the library compiled into the harness (JIT tiering
# off, the benchmarks' setting; and default tiering), against omniplacement.csx as the scripting host compiles and
# loads it (collectible context, default process settings).
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
{ date -u; nproc; grep -m1 "model name" /proc/cpuinfo; uptime; cat /proc/sys/kernel/random/boot_id; } > "$OUT/machine.txt"
R=$PWD; d=$(mktemp -d)
mkdir -p "$d/eval" "$d/rt"; tar xzf artifacts/eval-ab.tgz -C "$d/eval" ./new; tar xzf artifacts/runtime.tgz -C "$d/rt" ./dotnet
export DOTNET_ROOT="$d/rt/dotnet" DOTNET_CLI_TELEMETRY_OPTOUT=1
cat "$d/eval/../eval/new/../new/"*.runtimeconfig.json > /dev/null
cd "$d/eval/new"
for r in 1 2 3; do
  echo "== lib, TieredCompilation=0, round $r $(date -u +%T)" >> "$OUT/hostcpu.log"
  DOTNET_TieredCompilation=0 timeout 150 taskset -c 3 ./ExpertBridge.Policies.Evaluation cpu --cases=drifting,switching,stable >> "$OUT/hostcpu.log" 2>&1
  echo "== host (script, collectible), default tiering, round $r $(date -u +%T)" >> "$OUT/hostcpu.log"
  timeout 200 taskset -c 3 ./ExpertBridge.Policies.Evaluation cpu --cases=drifting,switching,stable --host=1 --policies="$R/policies" >> "$OUT/hostcpu.log" 2>&1
  echo "== lib, default tiering, round $r $(date -u +%T)" >> "$OUT/hostcpu.log"
  timeout 150 taskset -c 3 ./ExpertBridge.Policies.Evaluation cpu --cases=drifting,switching,stable >> "$OUT/hostcpu.log" 2>&1
done
cat "$OUT/hostcpu.log" | grep -v "^|-"
