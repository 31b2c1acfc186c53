#!/usr/bin/env pwsh
# Packs the end-to-end example for the GPU machine (no .NET there) into artifacts/e2e-gpu.tgz; called by publish.ps1.
# The C ABI shim hosts .NET through hostfxr (framework-dependent), so the bundle carries a private runtime:
#   native/            libexpertbridge.so (+ libnethost.so when linked dynamically) and managed/ (ExpertBridge.Native
#                      published framework-dependent, no satellite languages, no symbols or XML docs)
#   dotnet/            host/fxr/<ver> and shared/Microsoft.NETCore.App/<ver>, copied from the local SDK's dotnet root
#   src/, examples/, tests/gpu/common/, policies/   what the GPU machine builds (cmake + nvcc) and runs
#   run-e2e.sh
# On the GPU machine: bash tests/gpu/run-e2e.sh artifacts/e2e-gpu.tgz   (or the `e2e` stage of run-all.sh)
[CmdletBinding()]
param([string]$Configuration = 'Release')

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
. (Join-Path $PSScriptRoot 'publish-common.ps1')
$Root = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
$Stage = Join-Path $Root 'artifacts/e2e-gpu'
$Archive = Join-Path $Root 'artifacts/e2e-gpu.tgz'
$Native = Join-Path $Root 'artifacts/native'

function Invoke-Checked([string]$What, [scriptblock]$Block) {
    Write-Host "==> $What" -ForegroundColor Cyan
    & $Block
    if ($LASTEXITCODE -ne 0) { throw "$What failed (exit $LASTEXITCODE)" }
}

New-Stage $Stage

# The shim (C, no .NET needed to build it, but built here so the GPU machine needs no nethost either).
$shimBuild = Join-Path $Native 'build-shim-e2e'
$out = Join-Path $Stage 'native'
Invoke-Checked 'cmake configure shim' { cmake -S (Join-Path $Root 'src/ExpertBridge.Native/shim') -B $shimBuild -DCMAKE_BUILD_TYPE=Release "-DEB_OUTPUT_DIR=$out" -DEB_BUILD_MANAGED=OFF | Out-Host }
Invoke-Checked 'cmake build shim' { cmake --build $shimBuild --parallel 2 | Out-Host }
Invoke-Checked 'publish ExpertBridge.Native (framework-dependent)' {
    dotnet publish (Join-Path $Root 'src/ExpertBridge.Native/ExpertBridge.Native.csproj') -c $Configuration -o (Join-Path $out 'managed') `
        -p:SatelliteResourceLanguages=en -nologo -clp:NoSummary | Out-Host
}
Remove-Symbols (Join-Path $out 'managed')

# The private runtime: the version the SDK runs on, from the dotnet root that holds it.
$dotnet = (Get-Command dotnet).Source
$dotnetRoot = Split-Path -Parent ((Get-Item $dotnet).ResolvedTarget ?? $dotnet)
$runtime = dotnet --list-runtimes | Where-Object { $_ -match '^Microsoft\.NETCore\.App 10\.' } | Select-Object -Last 1
if (-not $runtime) { throw 'no Microsoft.NETCore.App 10.x runtime in the local dotnet (dotnet --list-runtimes)' }
$version = ($runtime -split ' ')[1]
$fxr = Join-Path $dotnetRoot "host/fxr/$version"
if (-not (Test-Path $fxr)) { $fxr = Get-ChildItem (Join-Path $dotnetRoot 'host/fxr') -Directory | Sort-Object Name | Select-Object -Last 1 -ExpandProperty FullName }
$shared = Join-Path $dotnetRoot "shared/Microsoft.NETCore.App/$version"
New-Item -ItemType Directory -Force -Path (Join-Path $Stage 'dotnet/host/fxr'), (Join-Path $Stage 'dotnet/shared/Microsoft.NETCore.App') | Out-Null
Copy-Item -Recurse $fxr (Join-Path $Stage 'dotnet/host/fxr/')
Copy-Item -Recurse $shared (Join-Path $Stage 'dotnet/shared/Microsoft.NETCore.App/')
# Debugger and standalone-GC libraries are not needed to run.
Get-ChildItem (Join-Path $Stage 'dotnet') -Recurse -Include '*.dbg', '*.pdb', 'createdump', 'libmscordaccore.so', 'libmscordbi.so', 'libclrgc.so', 'libclrgcexp.so' | Remove-Item -Force

# Sources the GPU machine builds, in their repository layout (the example's CMake finds the shim's cmake file,
# the header and the shared expert FFN by relative path), and the policies.
$sources = @('examples/cpp-server', 'src/ExpertBridge.Native/shim/UseExpertBridge.cmake', 'src/ExpertBridge.Native/include', 'tests/gpu/common', 'policies')
foreach ($s in $sources) {
    $dest = Join-Path $Stage (Split-Path -Parent $s)
    New-Item -ItemType Directory -Force -Path $dest | Out-Null
    Copy-Item -Recurse (Join-Path $Root $s) $dest
}
Copy-Item (Join-Path $PSScriptRoot 'run-e2e.sh') $Stage

Write-Archive $Stage $Archive "shim, managed component, .NET $version runtime, example sources, policies" -FailAboveMb 40 `
    -Hint 'with artifacts/gpu.tgz it would pass the 64 MiB the GPU machine receives'
