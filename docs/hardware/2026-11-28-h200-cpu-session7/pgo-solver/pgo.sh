#!/usr/bin/env bash
# TieredPGO off through runtimeconfig.json (System.Runtime.TieredPGO=false) against the default:
# the solver under default tiering (steady + cpu), and the composite compile-and-swap bench.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
{ date -u; nproc; grep -m1 "model name" /proc/cpuinfo; uptime; cat /proc/sys/kernel/random/boot_id; } > "$OUT/machine.txt"
R=$PWD; d=$(mktemp -d)
part=${1:-eval}
if [ "$part" = scripting ]; then tar xJf artifacts/scripting-composite.txz -C "$d"; cp -r "$d/ebcomp" "$d/ebcomp-pgo0"; mkdir -p "$d/eval/new" "$d/eval/pgo0"; echo '"configProperties": {' > "$d/eval/new/x.runtimeconfig.json";
else mkdir -p "$d/eval" "$d/rt" "$d/ebcomp-pgo0"; tar xzf artifacts/eval-ab.tgz -C "$d/eval" ./new; tar xzf artifacts/runtime.tgz -C "$d/rt" ./dotnet; cp -r "$d/eval/new" "$d/eval/pgo0"; fi
export DOTNET_ROOT="$d/rt/dotnet" DOTNET_CLI_TELEMETRY_OPTOUT=1
for f in "$d"/ebcomp-pgo0/*.runtimeconfig.json "$d"/eval/pgo0/*.runtimeconfig.json; do
  sed -i 's/"configProperties": {/"configProperties": {\n      "System.Runtime.TieredPGO": false,/' "$f"
done
grep -h TieredPGO "$d"/*/*.runtimeconfig.json "$d"/eval/*/*.runtimeconfig.json >> "$OUT/machine.txt"
if [ "$part" = eval ]; then
for r in 1 2 3 4; do
  for b in new pgo0; do
    echo "== $b steady round $r $(date -u +%T)" >> "$OUT/steady.log"
    (cd "$d/eval/$b" && timeout 120 taskset -c 3 ./ExpertBridge.Policies.Evaluation steady --cases=drifting,switching,stable --repeat=15 --only=steady) >> "$OUT/steady.log" 2>&1
  done
done
for b in new pgo0; do
  echo "== $b cpu $(date -u +%T)" >> "$OUT/cpu.log"
  (cd "$d/eval/$b" && timeout 200 taskset -c 3 ./ExpertBridge.Policies.Evaluation cpu --cases=drifting,switching,stable) >> "$OUT/cpu.log" 2>&1
done
fi
if [ "$part" = scripting ]; then
for r in 1 2 3; do
  for b in ebcomp ebcomp-pgo0; do
    echo "=== $b round $r $(date -u +%T)" >> "$OUT/scripting.log"
    timeout 150 "$d/$b/ExpertBridge.Scripting.Bench" --bench --runs 6 --script "$R/policies/omniplacement.csx" >> "$OUT/scripting.log" 2>&1
  done
done
fi
grep -h "^==\|steady |" "$OUT/steady.log"; grep -h "^==\|^| [a-z]" "$OUT/cpu.log"; grep -h "^===\|library edited: reload\|cold: first" "$OUT/scripting.log" | grep -v "^|"
