#!/usr/bin/env bash
# Before/after on a quiet machine without .NET (the GPU machine): the two builds of an archive of
# tests/gpu/publish-eval-ab.ps1 alternated within one call, on the private runtime of artifacts/e2e-gpu.tgz (or any
# archive with ./dotnet). Run from the repository root.
#   bash tests/gpu/run-cpu-ab.sh [artifacts/eval-ab.tgz] [artifacts/e2e-gpu.tgz]
# The evaluation harness: CPU time of the OmniPlacement solver, pinned to one core, JIT tiering off; AB_ROUNDS (3
# alternated rounds of `steady --only=steady --repeat=5`), AB_CORE (3), AB_CASES (drifting,switching,stable), then
# `cpu` (a long-lived instance per cadence) once per build; writes machine.txt, revisions.txt, steady-ab.log,
# cpu-ab.log under $OUT. A pure speedup must show the same fingerprints in both.
# The scripting harness (artifacts/scripting-ab.tgz): AB_ROUNDS alternated rounds of the compile-and-swap bench on
# policies/omniplacement.csx (5 runs each), then the small sample once per build; writes scripting-ab.log.
set -uo pipefail
ab=${1:-artifacts/eval-ab.tgz}
runtime=${2:-artifacts/e2e-gpu.tgz}
OUT=${OUT:-/tmp/out}
rounds=${AB_ROUNDS:-3}
core=${AB_CORE:-3}
cases=${AB_CASES:-drifting,switching,stable}
mkdir -p "$OUT"
dir=$(mktemp -d /tmp/eb-ab.XXXXXX)
tar xzf "$ab" -C "$dir" || { echo "cannot unpack $ab"; exit 2; }
cp -rn "$dir/new/." "$dir/base/" # the files the two builds share were packed once
repo=$PWD
mkdir -p "$dir/rt" && tar xzf "$runtime" -C "$dir/rt" ./dotnet || { echo "cannot unpack the runtime from $runtime"; exit 2; }
export DOTNET_ROOT="$dir/rt/dotnet" DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
{ date -u; nproc; grep -m1 "model name" /proc/cpuinfo; uptime; } > "$OUT/machine.txt" 2>&1
cp "$dir/revisions.txt" "$OUT/" 2>/dev/null
status=0
run() { # build, log, limit, program args...
  local build=$1 log=$2 limit=$3; shift 3
  echo "== $build $(date -u +%T)" >> "$OUT/$log"
  (cd "$dir/$build" && timeout "$limit" "$@") >> "$OUT/$log" 2>&1 || { echo "$build $1 failed: exit $?"; status=1; }
}
if [ -e "$dir/new/ExpertBridge.Scripting.Bench" ]; then
  for r in $(seq "$rounds"); do
    for build in base new; do run "$build" scripting-ab.log 150 ./ExpertBridge.Scripting.Bench --bench --runs 5 --script "$repo/policies/omniplacement.csx"; done
  done
  for build in base new; do run "$build" scripting-ab.log 60 ./ExpertBridge.Scripting.Bench --bench --runs 5; done
  cat "$OUT/revisions.txt" 2>/dev/null
  grep -h "^==\|^script\|^| [a-z]" "$OUT/scripting-ab.log"
  exit $status
fi
export DOTNET_TieredCompilation=0
eval_run() { local build=$1 log=$2 limit=$3; shift 3; run "$build" "$log" "$limit" taskset -c "$core" ./ExpertBridge.Policies.Evaluation "$@"; }
for r in $(seq "$rounds"); do
  for build in base new; do eval_run "$build" steady-ab.log 120 steady --cases="$cases" --repeat=5 --only=steady; done
done
for build in base new; do eval_run "$build" cpu-ab.log 240 cpu --cases="$cases"; done
cat "$OUT/revisions.txt" 2>/dev/null
grep -h "^==\|steady |" "$OUT/steady-ab.log"
grep -h "^==\|^| [a-z]" "$OUT/cpu-ab.log"
exit $status
