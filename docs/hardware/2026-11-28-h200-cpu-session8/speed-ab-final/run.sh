#!/usr/bin/env bash
# Session 8 solver A/B on one pinned core (JIT tiering off): base 9c77b78 against the final library of the session
# (split step, two-phase search, first-phase kick threshold), six alternated rounds; then a long-lived
# instance (`cpu`) for the new library.
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
{ date -u; nproc; grep -m1 "model name" /proc/cpuinfo; uptime; cat /proc/sys/kernel/random/boot_id; } > "$OUT/machine.txt"
d=$(mktemp -d); tar xzf artifacts/eval-ab.tgz -C "$d"; cp -rn "$d/new/." "$d/base/"
mkdir -p "$d/rt"; tar xzf artifacts/runtime.tgz -C "$d/rt" ./dotnet
export DOTNET_ROOT="$d/rt/dotnet" DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_TieredCompilation=0
cp "$d/revisions.txt" "$OUT/"
st() { local b=$1; shift; echo "== $b $* $(date -u +%T)" >> "$OUT/steady.log"; (cd "$d/$b" && timeout 90 taskset -c 3 ./ExpertBridge.Policies.Evaluation steady --cases=drifting,switching,stable --repeat=5 --only=steady "$@") >> "$OUT/steady.log" 2>&1; }
for r in 1 2 3 4 5 6; do st base; st new; done
for o in ""; do echo "== new cpu $o $(date -u +%T)" >> "$OUT/cpu.log"; (cd "$d/new" && timeout 120 taskset -c 3 ./ExpertBridge.Policies.Evaluation cpu --cases=drifting,switching,stable $o) >> "$OUT/cpu.log" 2>&1; done
grep -h "^==\|steady |" "$OUT/steady.log"; grep -h "^==\|^| [a-z]" "$OUT/cpu.log"
