#!/usr/bin/env pwsh
# The replay demo (`dotnet pwsh examples/run-replay-demo.ps1` after `build.ps1 build`): generate a skewed, drifting
# routing trace with workload switches, replay it under `trivial` (the placement engines start from) and `eplb`
# (DeepSeek's EPLB rebalancing every 50 steps from the last 100), and print the comparison table.
# Expects a build of the CLI in -Configuration (build.ps1 run builds first). Outputs go to artifacts/demo.
param(
    [string]$Configuration = 'Release',
    [int]$Steps = 600
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$root = Split-Path -Parent $PSScriptRoot
$out = Join-Path $root 'artifacts/demo'
New-Item -ItemType Directory -Force -Path $out | Out-Null
$trace = Join-Path $out 'trace.npy'
$json = Join-Path $out 'replay.json'

$cli = Join-Path $root "src/ExpertBridge.Cli/bin/$Configuration/net10.0/expertbridge.dll"
if (-not (Test-Path $cli)) { throw "no $Configuration build of the CLI at $cli; run: dotnet pwsh ./build.ps1 build" }

function Invoke-Cli([string[]]$CliArgs) {
    dotnet $cli @CliArgs
    if ($LASTEXITCODE -ne 0) { throw "expertbridge $($CliArgs[0]) failed (exit $LASTEXITCODE)" }
}

# 16 MoE layers x 64 experts, 2048 tokens per step, top-6; hot experts an order of magnitude above cold ones,
# slow drift, and a workload switch every 300 steps.
Invoke-Cli @('trace', 'generate', '--layers', '16', '--experts', '64', '--steps', "$Steps", '--tokens', '2048',
    '--top-k', '6', '--skew', '1.2', '--drift', '0.02', '--switch-every', '300', '--seed', '7', '--out', $trace)

# 2 nodes x 8 devices x 5 slots = 80 slots for 64 experts (16 redundant); 8 expert groups; 44 MiB per expert
# (DeepSeek-V3's FP8 expert: 3 x 7168 x 2048 bytes).
Invoke-Cli @('replay', '--trace', $trace, '--policy', 'trivial', '--policy', 'eplb',
    '--devices', '16', '--slots-per-device', '5', '--nodes', '2', '--groups', '8',
    '--window', '100', '--interval', '50', '--expert-bytes', '44040192', '--json', $json)

Write-Host ''
Write-Host "JSON results: $json"
