#!/usr/bin/env bash
# Runtime JIT settings (through runtimeconfig.json, as a host would ship them) against the default:
#   eval: the solver compiled into the harness, default tiering otherwise: steady (fresh instance, 15 calls) and cpu
#         (a long-lived instance over a replay, as a host calls it), one core;
#   scripting: the compile-and-swap bench, plain ReadyToRun (scripting-ab.tgz "new") or composite (scripting-composite.txz).
set -u
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
part=${1:-eval}
{ date -u; nproc; grep -m1 "model name" /proc/cpuinfo; uptime; cat /proc/sys/kernel/random/boot_id; } > "$OUT/machine-$part.txt"
R=$PWD; d=$(mktemp -d)
declare -A props=(
  [default]=''
  [pgo0]='"System.Runtime.TieredPGO": false,'
  [qjfl0]='"System.Runtime.TieredCompilation.QuickJitForLoops": false,'
  [qj0]='"System.Runtime.TieredCompilation.QuickJit": false,'
  [tc0]='"System.Runtime.TieredCompilation": false,'
  [qjfl0pgo0]='"System.Runtime.TieredCompilation.QuickJitForLoops": false, "System.Runtime.TieredPGO": false,'
)
configs=${CONFIGS:-default pgo0 qjfl0 qj0 tc0 qjfl0pgo0}
variant() { # source dir, config -> dir
  local src=$1 cfg=$2 dst="$1-$2"
  [ -d "$dst" ] || { cp -r "$src" "$dst"; for f in "$dst"/*.runtimeconfig.json; do sed -i "s/\"configProperties\": {/\"configProperties\": {\n      ${props[$cfg]}/" "$f"; done; }
  echo "$dst"
}
if [ "$part" = eval ] || [ "$part" = plain ]; then
  mkdir -p "$d/rt"; tar xzf artifacts/runtime.tgz -C "$d/rt" ./dotnet; export DOTNET_ROOT="$d/rt/dotnet" DOTNET_CLI_TELEMETRY_OPTOUT=1
fi
if [ "$part" = eval ]; then
  mkdir -p "$d/eval"; tar xzf artifacts/eval-ab.tgz -C "$d/eval" ./new
  for r in 1 2; do for c in $configs; do
    v=$(variant "$d/eval/new" "$c"); echo "== $c steady round $r $(date -u +%T)" >> "$OUT/steady.log"
    (cd "$v" && timeout 100 taskset -c 3 ./ExpertBridge.Policies.Evaluation steady --cases=drifting,switching,stable --repeat=15 --only=steady) >> "$OUT/steady.log" 2>&1
  done; done
  for c in $configs; do
    v=$(variant "$d/eval/new" "$c"); echo "== $c cpu $(date -u +%T)" >> "$OUT/cpu.log"
    (cd "$v" && timeout 150 taskset -c 3 ./ExpertBridge.Policies.Evaluation cpu --cases=drifting,switching,stable) >> "$OUT/cpu.log" 2>&1
  done
  grep -h "$(head -1 "$v"/*.runtimeconfig.json >/dev/null; echo configProperties)" -A2 "$v"/*.runtimeconfig.json >> "$OUT/machine-$part.txt"
fi
if [ "$part" = plain ] || [ "$part" = composite ]; then
  if [ "$part" = plain ]; then mkdir -p "$d/s"; tar xzf artifacts/scripting-ab.tgz -C "$d/s"; cp -rn "$d/s/new/." "$d/s/base/" 2>/dev/null; src="$d/s/new";
  else tar xJf artifacts/scripting-composite.txz -C "$d"; src="$d/ebcomp"; fi
  for r in 1 2; do for c in $configs; do
    v=$(variant "$src" "$c"); echo "=== $c round $r $(date -u +%T)" >> "$OUT/scripting-$part.log"
    timeout 120 "$v/ExpertBridge.Scripting.Bench" --bench --runs 5 --script "$R/policies/omniplacement.csx" >> "$OUT/scripting-$part.log" 2>&1
  done; done
fi
