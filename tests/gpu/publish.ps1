#!/usr/bin/env pwsh
# build.ps1 publish-gpu: self-contained linux-x64 builds of the GPU programs (the GPU machine has no .NET) into
# artifacts/gpu/<name>, with the binding ABI checks (bash + gcc) and run-gpu.sh beside them, packed as
# artifacts/gpu.tgz. On the GPU machine: bash tests/gpu/run-gpu.sh artifacts/gpu.tgz (see that script).
# To add a program, add one entry to $Programs. Trim only programs that are trim-safe (Roslyn is not).
[CmdletBinding()]
param([string]$Configuration = 'Release')

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$Root = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
$Stage = Join-Path $Root 'artifacts/gpu'
$Archive = Join-Path $Root 'artifacts/gpu.tgz'

$Programs = @(
    @{ Name = 'gpusmoke'; Project = 'tests/ExpertBridge.GpuSmoke'; Trimmed = $true }
)

if (Test-Path $Stage) { Remove-Item -Recurse -Force $Stage }
New-Item -ItemType Directory -Force -Path $Stage | Out-Null

foreach ($p in $Programs) {
    $out = Join-Path $Stage $p.Name
    Write-Host "==> publish $($p.Project) -> artifacts/gpu/$($p.Name)" -ForegroundColor Cyan
    dotnet publish (Join-Path $Root $p.Project) -c $Configuration -r linux-x64 --self-contained `
        "-p:PublishTrimmed=$($p.Trimmed.ToString().ToLowerInvariant())" -o $out -nologo
    if ($LASTEXITCODE -ne 0) { throw "dotnet publish $($p.Project) failed (exit $LASTEXITCODE)" }
}

# The ABI checks need only bash and gcc: the script and each target's generated check.
$bindings = Join-Path $Stage 'bindings'
New-Item -ItemType Directory -Force -Path $bindings | Out-Null
Copy-Item (Join-Path $Root 'bindings/abi-check.sh') $bindings
foreach ($check in Get-ChildItem -Path (Join-Path $Root 'bindings') -Recurse -Filter 'abi_check.*' |
        Where-Object { $_.Directory.Name -eq 'Generated' }) {
    $target = $check.Directory.Parent.Name
    $dest = Join-Path $bindings "$target/Generated"
    New-Item -ItemType Directory -Force -Path $dest | Out-Null
    Copy-Item $check.FullName $dest
}
Copy-Item (Join-Path $PSScriptRoot 'run-gpu.sh') $Stage

if (Test-Path $Archive) { Remove-Item -Force $Archive }
tar czf $Archive -C $Stage .
if ($LASTEXITCODE -ne 0) { throw "tar failed (exit $LASTEXITCODE)" }
$mb = [math]::Round((Get-Item $Archive).Length / 1MB, 1)
Write-Host "artifacts/gpu.tgz: $mb MB ($(($Programs | ForEach-Object { $_.Name }) -join ', '), abi checks, run-gpu.sh)"
