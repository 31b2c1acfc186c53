#!/usr/bin/env bash
# Plain ReadyToRun compile bench on a 16-core host: cold start with and without a multicore JIT profile of an earlier
# start (the bench alternates the two rows), three rounds of 8 runs.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
{ date -u; nproc; grep -m1 "model name" /proc/cpuinfo; uptime; cat /proc/sys/kernel/random/boot_id; } > "$OUT/machine.txt"
R=$PWD; d=$(mktemp -d)
mkdir -p "$d/rt" "$d/s"; tar xzf artifacts/runtime.tgz -C "$d/rt" ./dotnet; tar xzf artifacts/scripting-ab.tgz -C "$d/s"
export DOTNET_ROOT="$d/rt/dotnet" DOTNET_CLI_TELEMETRY_OPTOUT=1
cat "$d/s/revisions.txt" >> "$OUT/machine.txt"
for r in 1 2 3; do
  echo "=== round $r $(date -u +%T)" >> "$OUT/jitprof.log"
  timeout 170 "$d/s/new/ExpertBridge.Scripting.Bench" --bench --runs 8 --script "$R/policies/omniplacement.csx" >> "$OUT/jitprof.log" 2>&1
done
cat "$OUT/jitprof.log"
