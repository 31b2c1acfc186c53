#!/usr/bin/env bash
# Cold-start knobs for the compile-and-swap bench (ad hoc; results recorded in docs/benchmarks.md).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
dir=$(mktemp -d /tmp/eb-knobs.XXXXXX)
tar xzf artifacts/scripting-ab.tgz -C "$dir"
mkdir -p "$dir/rt" && tar xzf artifacts/runtime.tgz -C "$dir/rt" ./dotnet
export DOTNET_ROOT="$dir/rt/dotnet" DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
repo=$PWD
{ date -u; nproc; grep -m1 "model name" /proc/cpuinfo; uptime; } > "$OUT/machine.txt"
for r in 1 2; do
  for knob in none DOTNET_TieredPGO=0 DOTNET_GCgen0size=0x4000000 "DOTNET_TieredPGO=0 DOTNET_GCgen0size=0x4000000"; do
    echo "== $knob round $r $(date -u +%T)" >> "$OUT/knobs.log"
    (cd "$dir/new" && env $([ "$knob" = none ] || echo $knob) timeout 120 ./ExpertBridge.Scripting.Bench --bench --runs 5 --script "$repo/policies/omniplacement.csx") >> "$OUT/knobs.log" 2>&1
  done
done
grep -h "^==\|cold\|warm:" "$OUT/knobs.log"
