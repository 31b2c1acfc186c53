#!/usr/bin/env pwsh
# The end-to-end run (README's main job): builds libexpertbridge.so with the managed component and
# examples/cpp-server, then runs the C++ serving loop with the bridge embedded through the C ABI: skewed drifting
# routing, relocation while serving, a policy rewrite mid-run, checksums on every routed slot.
#   dotnet pwsh examples/run-e2e.ps1                 # ~6000 steps, live progress, closing summary
#   dotnet pwsh examples/run-e2e.ps1 -Soak           # 100,000+ steps, policy rewritten every 20,000 (memory, checksums)
#   dotnet pwsh examples/run-e2e.ps1 -Policy eplb    # a built-in policy instead of the hot-reloaded script
# The JSON summary goes to $env:EXPERTBRIDGE_SUMMARY when set, else artifacts/e2e/summary.json.
# Fails when the program fails or any checksum mismatched.
[CmdletBinding()]
param(
    [string]$Configuration = 'Release',
    [long]$Steps = 0,
    [string]$Policy = '',
    [switch]$Soak,
    [switch]$Rebuild,
    [int]$MetricsPort = 0
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$root = Split-Path -Parent $PSScriptRoot
$native = Join-Path $root 'artifacts/native'
$work = Join-Path $root 'artifacts/e2e'
New-Item -ItemType Directory -Force -Path $work | Out-Null

function Invoke-Native([string]$What, [scriptblock]$Block) {
    Write-Host "==> $What" -ForegroundColor Cyan
    & $Block
    if ($LASTEXITCODE -ne 0) { throw "$What failed (exit $LASTEXITCODE)" }
}

# Reuses the shim that build.ps1 built into artifacts/native; -Rebuild (or a missing shim) builds it here.
$build = Join-Path $native 'build-cpp-server'
$rebuildShim = if ($Rebuild) { 'ON' } else { 'OFF' }
Invoke-Native 'cmake configure cpp-server' { cmake -S (Join-Path $root 'examples/cpp-server') -B $build -DCMAKE_BUILD_TYPE=$Configuration "-DEB_OUTPUT_DIR=$native" "-DEB_REBUILD_SHIM=$rebuildShim" | Out-Host }
Invoke-Native 'cmake build cpp-server' { cmake --build $build --parallel 2 | Out-Host }

# The policy: the hot-reloaded script when the scripting layer is built in, else the best built-in available.
if ($Policy -eq '') {
    $builtIns = Get-Content -Raw (Join-Path $root 'src/ExpertBridge.Core/Policies/BuiltInPolicies.cs')
    if ((Test-Path (Join-Path $root 'src/ExpertBridge.Scripting')) -and $builtIns -match '"eplb"') {
        $Policy = Join-Path $work 'policy.csx'
    } elseif ($builtIns -match '"eplb"') {
        $Policy = 'eplb'
        Write-Warning 'no scripting layer in this tree: the built-in eplb policy is reloaded explicitly instead of a rewritten script'
    } else {
        $Policy = 'trivial'
        Write-Warning 'neither the scripting layer nor the eplb built-in is in this tree: the trivial policy never rebalances'
    }
}

$summary = if ($env:EXPERTBRIDGE_SUMMARY) { $env:EXPERTBRIDGE_SUMMARY } else { Join-Path $work 'summary.json' }
$env:EXPERTBRIDGE_SUMMARY = $summary
$program = Join-Path $native 'examples/cpp-server'
$arguments = @('--policy', $Policy, '--metrics-port', "$MetricsPort")
if ($Soak) {
    # Small experts and batches so 100,000+ steps fit in a minute; the bridge still rebalances every few hundred steps.
    $arguments += @('--steps', "$(if ($Steps -gt 0) { $Steps } else { 100000 })", '--layers', '4', '--experts', '32', '--devices', '4',
        '--slots-per-device', '10', '--tokens', '64', '--hidden', '16', '--top-k', '4', '--shift-every', '5000',
        '--rewrite-at', '10000', '--rewrite-every', '20000', '--quiet')
} elseif ($Steps -gt 0) {
    $arguments += @('--steps', "$Steps")
}

Invoke-Native "cpp-server $($arguments -join ' ')" { & $program @arguments }
$result = Get-Content -Raw $summary | ConvertFrom-Json
Write-Host ("e2e: {0} steps, {1} rebalances, {2} policy reloads, imbalance {3:N3} -> {4:N3}, checksum mismatches {5} (summary: {6})" -f `
    $result.steps, $result.rebalances, $result.policyReloads, $result.imbalanceFirstWindow, $result.imbalanceLastWindow, $result.checksumMismatches, $summary)
if ($result.checksumMismatches -ne 0) { throw "e2e: $($result.checksumMismatches) checksum mismatch(es)" }
