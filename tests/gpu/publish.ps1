#!/usr/bin/env pwsh
# build.ps1 publish-gpu: self-contained linux-x64 builds of the GPU programs (the GPU machine has no .NET) into
# artifacts/gpu/<name>, with the sources the GPU machine compiles there (the busy kernels for nvcc, the bindings' ABI
# checks for gcc) and the run scripts, packed as artifacts/gpu.tgz. On the GPU machine, from the repository root:
#   bash tests/gpu/run-devices.sh artifacts/gpu.tgz       (and run-gpu.sh where the bindings branch provides it)
# It then runs publish-e2e.ps1: the end-to-end example with a private .NET runtime, artifacts/e2e-gpu.tgz.
# To add a program, add one entry to $Programs. Each is trimmed when the trimmer reports no warning for it (warnings
# are errors in this repository, so a trim warning fails the trimmed publish); otherwise it is published untrimmed
# and the script says so. The archive should stay under about 40 MB (the tree sent to the GPU machine is limited).
[CmdletBinding()]
param([string]$Configuration = 'Release')

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
. (Join-Path $PSScriptRoot 'publish-common.ps1')
$Root = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
$Stage = Join-Path $Root 'artifacts/gpu'
$Archive = Join-Path $Root 'artifacts/gpu.tgz'
$Logs = Join-Path $Root 'artifacts/log'

$Programs = @(
    @{ Name = 'gpubench'; Project = 'tests/ExpertBridge.GpuBench' }
    @{ Name = 'gpusmoke'; Project = 'tests/ExpertBridge.GpuSmoke' }
) | Where-Object { Test-Path (Join-Path $Root $_.Project) }

New-Stage $Stage
New-Item -ItemType Directory -Force -Path $Logs | Out-Null

function Publish-Program($p, [bool]$trimmed) {
    $out = Join-Path $Stage $p.Name
    $log = Join-Path $Logs "publish-$($p.Name).log"
    if (Test-Path $out) { Remove-Item -Recurse -Force $out }
    dotnet publish (Join-Path $Root $p.Project) -c $Configuration -r linux-x64 --self-contained `
        "-p:PublishTrimmed=$($trimmed.ToString().ToLowerInvariant())" -o $out -nologo -clp:NoSummary 2>&1 |
        Tee-Object -FilePath $log | Out-Host
    return @{ Code = $LASTEXITCODE; Log = (Get-Content -Raw $log) }
}

$summary = @()
foreach ($p in $Programs) {
    Write-Host "==> publish $($p.Project) -> artifacts/gpu/$($p.Name) (trimmed)" -ForegroundColor Cyan
    $r = Publish-Program $p $true
    $mode = 'trimmed'
    if ($r.Code -ne 0) {
        if ($r.Log -notmatch 'warning (IL2|IL3)\d{3}|error (IL2|IL3)\d{3}') {
            throw "dotnet publish $($p.Project) failed (exit $($r.Code)); see artifacts/log/publish-$($p.Name).log"
        }
        Write-Host "    trim warnings: publishing $($p.Name) untrimmed" -ForegroundColor Yellow
        $r = Publish-Program $p $false
        if ($r.Code -ne 0) { throw "dotnet publish $($p.Project) (untrimmed) failed (exit $($r.Code))" }
        $mode = 'untrimmed (trim warnings)'
    }
    $summary += "$($p.Name): $mode"
}

# Sources the GPU machine builds: the busy kernels (nvcc) and the bindings' ABI checks (bash + gcc).
$kernels = Join-Path $Stage 'kernels'
New-Item -ItemType Directory -Force -Path $kernels | Out-Null
Copy-Item (Join-Path $Root 'tests/gpu/busy/busy_kernels.cu') $kernels
$bindings = Join-Path $Stage 'bindings'
New-Item -ItemType Directory -Force -Path $bindings | Out-Null
Copy-Item (Join-Path $Root 'bindings/abi-check.sh') $bindings
foreach ($check in Get-ChildItem -Path (Join-Path $Root 'bindings') -Recurse -Filter 'abi_check.*' |
        Where-Object { $_.Directory.Name -eq 'Generated' }) {
    $dest = Join-Path $bindings "$($check.Directory.Parent.Name)/Generated"
    New-Item -ItemType Directory -Force -Path $dest | Out-Null
    Copy-Item $check.FullName $dest
}
foreach ($script in Get-ChildItem -Path $PSScriptRoot -Filter 'run-*.sh') { Copy-Item $script.FullName $Stage }

Write-Archive $Stage $Archive "$($summary -join '; '); kernels, abi checks, run scripts" -FailAboveMb 60 -WarnAboveMb 40 `
    -Hint 'over the 64 MiB the GPU machine receives (untrim or drop a program?)'

# The end-to-end example with its private .NET runtime: artifacts/e2e-gpu.tgz.
& (Join-Path $PSScriptRoot 'publish-e2e.ps1') -Configuration $Configuration
if ($LASTEXITCODE -ne 0) { throw "publish-e2e failed (exit $LASTEXITCODE)" }
& (Join-Path $PSScriptRoot 'publish-cpu.ps1') -Configuration $Configuration
if ($LASTEXITCODE -ne 0) { throw "publish-cpu failed (exit $LASTEXITCODE)" }
