#!/usr/bin/env bash
# Session 9: which of the session's two helper branches moves the Xeon's drifting time, on one pinned core of the GPU
# machine (JIT tiering off). From the repository root with artifacts/var.tgz (one framework-dependent publish of
# tests/ExpertBridge.Policies.Evaluation per variant, named in its revisions.txt) and artifacts/runtime.tgz:
# ROUNDS rounds of `steady --only=steady --repeat=5`, every variant once per round, the order rotated each round.
#   ROUNDS=6 bash docs/hardware/2026-11-29-h200-cpu-session9/variants-ab.sh
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
ROUNDS=${ROUNDS:-6}
{ date -u; nproc; grep -m1 "model name" /proc/cpuinfo; uptime; cat /proc/sys/kernel/random/boot_id; } > "$OUT/machine.txt"
d=$(mktemp -d); tar xzf artifacts/var.tgz -C "$d"
mkdir -p "$d/rt"; tar xzf artifacts/runtime.tgz -C "$d/rt" ./dotnet
export DOTNET_ROOT="$d/rt/dotnet" DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_TieredCompilation=0
cp "$d/revisions.txt" "$OUT/"
mapfile -t variants < <(cut -d' ' -f1 "$d/revisions.txt")
n=${#variants[@]}
for r in $(seq 0 $((ROUNDS - 1))); do
  for i in $(seq 0 $((n - 1))); do
    v=${variants[$(((i + r) % n))]}
    echo "== $v round $r $(date -u +%T)" >> "$OUT/steady.log"
    (cd "$d/$v" && timeout 90 taskset -c 3 ./ExpertBridge.Policies.Evaluation steady --cases=drifting,switching,stable --repeat=5 --only=steady) >> "$OUT/steady.log" 2>&1
  done
done
grep -h "^==\|steady |" "$OUT/steady.log"
