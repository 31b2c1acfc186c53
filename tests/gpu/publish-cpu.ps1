#!/usr/bin/env pwsh
# Packs the CPU benchmarks for a quiet machine without .NET (the GPU machine: 16+ idle cores) into
# artifacts/cpu-bench.tgz. The programs are framework-dependent and run on the private runtime that
# artifacts/e2e-gpu.tgz carries (publish-e2e.ps1), so the two archives together stay under the 64 MiB the GPU
# machine receives:
#   benchmarks/        tests/ExpertBridge.Benchmarks (BenchmarkDotNet; run with --inProcess: no SDK there)
#   scripting-bench/   tests/ExpertBridge.Scripting.Bench, ReadyToRun (cold/warm/cached compile + swap)
#   evaluation/        tests/ExpertBridge.Policies.Evaluation (thread CPU time per OmniPlacement decision)
#   run-cpu-bench.sh
# On the GPU machine: bash tests/gpu/run-cpu-bench.sh   (or the `cpu` stage of run-all.sh)
[CmdletBinding()]
param([string]$Configuration = 'Release')

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
. (Join-Path $PSScriptRoot 'publish-common.ps1')
$Root = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
$Stage = Join-Path $Root 'artifacts/cpu-bench'
$Archive = Join-Path $Root 'artifacts/cpu-bench.tgz'

New-Stage $Stage

$programs = @(
    @{ Name = 'benchmarks'; Project = 'tests/ExpertBridge.Benchmarks'; ReadyToRun = $false }
    @{ Name = 'scripting-bench'; Project = 'tests/ExpertBridge.Scripting.Bench'; ReadyToRun = $true }
    @{ Name = 'evaluation'; Project = 'tests/ExpertBridge.Policies.Evaluation'; ReadyToRun = $false }
)
foreach ($p in $programs) {
    Write-Host "==> publish $($p.Project) -> artifacts/cpu-bench/$($p.Name)" -ForegroundColor Cyan
    Publish-FrameworkDependent (Join-Path $Root $p.Project) $Configuration (Join-Path $Stage $p.Name) -ReadyToRun:$p.ReadyToRun
}
Remove-Symbols $Stage
Copy-Item (Join-Path $PSScriptRoot 'run-cpu-bench.sh') $Stage

Write-Archive $Stage $Archive 'benchmarks, scripting bench, evaluation; runs on the runtime of artifacts/e2e-gpu.tgz'
