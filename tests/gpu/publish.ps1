#!/usr/bin/env pwsh
# Self-contained builds of the GPU programs for the GPU machine (no .NET there), packed as artifacts/gpu.tgz.
# build.ps1 publish-gpu calls this. Add a program by adding a line to $Programs (project path, trimmed or not).
[CmdletBinding()]
param([string]$Configuration = 'Release')
$ErrorActionPreference = 'Stop'
$Root = Resolve-Path (Join-Path $PSScriptRoot '../..')
$Out = Join-Path $Root 'artifacts/gpu'
$Programs = @(
    @{ Project = 'tests/ExpertBridge.GpuBench'; Name = 'gpubench'; Trimmed = $true }
)
if (Test-Path (Join-Path $Root 'tests/ExpertBridge.GpuSmoke')) {
    $Programs += @{ Project = 'tests/ExpertBridge.GpuSmoke'; Name = 'gpusmoke'; Trimmed = $true }
}
Remove-Item -Recurse -Force $Out -ErrorAction SilentlyContinue
foreach ($p in $Programs) {
    $dest = Join-Path $Out $p.Name
    Write-Host "==> publish $($p.Project) -> $dest" -ForegroundColor Cyan
    dotnet publish (Join-Path $Root $p.Project) -c $Configuration -r linux-x64 --self-contained "-p:PublishTrimmed=$($p.Trimmed)" -o $dest -nologo
    if ($LASTEXITCODE -ne 0) { throw "publish $($p.Project) failed" }
}
$tgz = Join-Path $Root 'artifacts/gpu.tgz'
tar czf $tgz -C $Out .
if ($LASTEXITCODE -ne 0) { throw 'tar failed' }
Write-Host ("{0}: {1:N1} MB" -f $tgz, ((Get-Item $tgz).Length / 1MB))
