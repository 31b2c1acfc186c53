#!/usr/bin/env bash
# Library-edit sequences of the composite compile-and-swap bench under tiering knobs.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
{ date -u; nproc; grep -m1 "model name" /proc/cpuinfo; uptime; cat /proc/sys/kernel/random/boot_id; } > "$OUT/machine.txt"
d=$(mktemp -d); tar xJf artifacts/scripting-composite.txz -C "$d"
b="$d/ebcomp/ExpertBridge.Scripting.Bench"
R=$PWD
for round in 1 2 3; do
for cfg in ${CONFIGS:-default pgo0 delay0 tc0 pgo0delay0}; do
  env=()
  case $cfg in
    pgo0) env=(DOTNET_TieredPGO=0);;
    delay0) env=(DOTNET_TC_CallCountingDelayMs=0);;
    tc0) env=(DOTNET_TieredCompilation=0);;
    pgo0delay0) env=(DOTNET_TieredPGO=0 DOTNET_TC_CallCountingDelayMs=0);;
  esac
  echo "=== round $round config $cfg ${env[*]:-}" | tee -a "$OUT/tiering.log"
  env "${env[@]}" timeout 120 "$b" --bench --runs 8 --script "$R/policies/omniplacement.csx" >> "$OUT/tiering.log" 2>&1
done
done
