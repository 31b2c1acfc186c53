#!/usr/bin/env bash
# Session 8 solver A/B on one pinned core of the GPU machine (JIT tiering off), from the repository root with
# artifacts/eval-ab.tgz (tests/gpu/publish-eval-ab.ps1 -Baseline 9c77b78) and artifacts/runtime.tgz:
# ROUNDS alternated rounds of `steady --only=steady --repeat=5` for base, new, then new under each option set of
# OPTIONS; then a long-lived instance (`cpu`) of new at the header options and under each option set of CPU_OPTIONS.
#   speed-ab/:       ROUNDS=4 OPTIONS="scenarios=2 scenarios=1" CPU_OPTIONS="scenarios=2" bash docs/hardware/2026-11-28-h200-cpu-session8/solver-ab.sh
#   speed-ab-final/: ROUNDS=6 bash docs/hardware/2026-11-28-h200-cpu-session8/solver-ab.sh
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
ROUNDS=${ROUNDS:-6}; OPTIONS=${OPTIONS:-}; CPU_OPTIONS=${CPU_OPTIONS:-}
{ date -u; nproc; grep -m1 "model name" /proc/cpuinfo; uptime; cat /proc/sys/kernel/random/boot_id; } > "$OUT/machine.txt"
d=$(mktemp -d); tar xzf artifacts/eval-ab.tgz -C "$d"; cp -rn "$d/new/." "$d/base/"
mkdir -p "$d/rt"; tar xzf artifacts/runtime.tgz -C "$d/rt" ./dotnet
export DOTNET_ROOT="$d/rt/dotnet" DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_TieredCompilation=0
cp "$d/revisions.txt" "$OUT/"
st() { local b=$1; shift; echo "== $b $* $(date -u +%T)" >> "$OUT/steady.log"; (cd "$d/$b" && timeout 90 taskset -c 3 ./ExpertBridge.Policies.Evaluation steady --cases=drifting,switching,stable --repeat=5 --only=steady "$@") >> "$OUT/steady.log" 2>&1; }
for r in $(seq "$ROUNDS"); do st base; st new; for o in $OPTIONS; do st new "$o"; done; done
for o in "" $CPU_OPTIONS; do echo "== new cpu $o $(date -u +%T)" >> "$OUT/cpu.log"; (cd "$d/new" && timeout 120 taskset -c 3 ./ExpertBridge.Policies.Evaluation cpu --cases=drifting,switching,stable $o) >> "$OUT/cpu.log" 2>&1; done
grep -h "^==\|steady |" "$OUT/steady.log"; grep -h "^==\|^| [a-z]" "$OUT/cpu.log"
