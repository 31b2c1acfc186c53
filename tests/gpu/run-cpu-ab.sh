#!/usr/bin/env bash
# Before/after CPU time of the OmniPlacement solver on a quiet machine without .NET (the GPU machine): the two builds
# of artifacts/eval-ab.tgz (tests/gpu/publish-eval-ab.ps1) alternated within one call, pinned to one core, JIT tiering
# off, on the private runtime of artifacts/e2e-gpu.tgz (or any archive with ./dotnet):
#   bash tests/gpu/run-cpu-ab.sh [artifacts/eval-ab.tgz] [artifacts/e2e-gpu.tgz]
# Environment: AB_ROUNDS (3 alternated rounds of `steady --only=steady --repeat=5`), AB_CORE (3), AB_CASES
# (drifting,switching,stable). Then `cpu` (a long-lived instance per cadence) once per build. Writes under $OUT:
# machine.txt, revisions.txt, steady-ab.log, cpu-ab.log. A pure speedup must show the same fingerprints in both.
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
mkdir -p "$dir/rt" && tar xzf "$runtime" -C "$dir/rt" ./dotnet || { echo "cannot unpack the runtime from $runtime"; exit 2; }
export DOTNET_ROOT="$dir/rt/dotnet" DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_TieredCompilation=0
{ date -u; nproc; grep -m1 "model name" /proc/cpuinfo; uptime; } > "$OUT/machine.txt" 2>&1
cp "$dir/revisions.txt" "$OUT/" 2>/dev/null
status=0
run() { # build, log, limit, args...
  local build=$1 log=$2 limit=$3; shift 3
  echo "== $build $(date -u +%T)" >> "$OUT/$log"
  (cd "$dir/$build" && timeout "$limit" taskset -c "$core" ./ExpertBridge.Policies.Evaluation "$@") >> "$OUT/$log" 2>&1 \
    || { echo "$build $1 failed: exit $?"; status=1; }
}
for r in $(seq "$rounds"); do
  for build in base new; do run "$build" steady-ab.log 120 steady --cases="$cases" --repeat=5 --only=steady; done
done
for build in base new; do run "$build" cpu-ab.log 240 cpu --cases="$cases"; done
cat "$OUT/revisions.txt" 2>/dev/null
grep -h "^==\|steady |" "$OUT/steady-ab.log"
grep -h "^==\|^| [a-z]" "$OUT/cpu-ab.log"
exit $status
