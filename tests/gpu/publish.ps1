#!/usr/bin/env pwsh
# Self-contained builds of the GPU programs for the GPU machine (no .NET there), packed as artifacts/gpu.tgz with the
# binding ABI checks (bash + gcc) and run-gpu.sh beside them. build.ps1 publish-gpu calls this.
# Add a program by adding a line to $Programs (project path, trimmed or not; Roslyn users must not be trimmed).
[CmdletBinding()]
param([string]$Configuration = 'Release')
$ErrorActionPreference = 'Stop'
$Root = Resolve-Path (Join-Path $PSScriptRoot '../..')
$Out = Join-Path $Root 'artifacts/gpu'
$Programs = @(
    @{ Project = 'tests/ExpertBridge.GpuBench'; Name = 'gpubench'; Trimmed = $true }
    @{ Project = 'tests/ExpertBridge.GpuSmoke'; Name = 'gpusmoke'; Trimmed = $true }
)
Remove-Item -Recurse -Force $Out -ErrorAction SilentlyContinue
foreach ($p in $Programs) {
    $dest = Join-Path $Out $p.Name
    Write-Host "==> publish $($p.Project) -> $dest" -ForegroundColor Cyan
    dotnet publish (Join-Path $Root $p.Project) -c $Configuration -r linux-x64 --self-contained "-p:PublishTrimmed=$($p.Trimmed)" -o $dest -nologo
    if ($LASTEXITCODE -ne 0) { throw "publish $($p.Project) failed" }
}
# The binding ABI checks need only bash and gcc: the script and each target's generated check (run-gpu.sh runs them).
$bindings = Join-Path $Out 'bindings'
New-Item -ItemType Directory -Force -Path $bindings | Out-Null
Copy-Item (Join-Path $Root 'bindings/abi-check.sh') $bindings
foreach ($check in Get-ChildItem -Path (Join-Path $Root 'bindings') -Recurse -Filter 'abi_check.*' |
        Where-Object { $_.Directory.Name -eq 'Generated' }) {
    $dest = Join-Path $bindings "$($check.Directory.Parent.Name)/Generated"
    New-Item -ItemType Directory -Force -Path $dest | Out-Null
    Copy-Item $check.FullName $dest
}
Copy-Item (Join-Path $PSScriptRoot 'run-gpu.sh') $Out
$tgz = Join-Path $Root 'artifacts/gpu.tgz'
tar czf $tgz -C $Out .
if ($LASTEXITCODE -ne 0) { throw 'tar failed' }
Write-Host ("{0}: {1:N1} MB" -f $tgz, ((Get-Item $tgz).Length / 1MB))
