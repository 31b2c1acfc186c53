#!/usr/bin/env pwsh
# Packs the OmniPlacement evaluation harness (tests/ExpertBridge.Policies.Evaluation) twice, for a before/after CPU
# comparison on a quiet machine: the working tree ("new") and a baseline git revision ("base"), into
# artifacts/eval-ab.tgz (about 9 MB). Timings from different machines of one kind, or from runs minutes apart, do not
# compare (docs/benchmarks.md): run-cpu-ab.sh alternates the two builds within one call.
#   dotnet pwsh tests/gpu/publish-eval-ab.ps1 -Baseline 6bf4120
#   on the GPU machine (no .NET there): bash tests/gpu/run-cpu-ab.sh artifacts/eval-ab.tgz artifacts/e2e-gpu.tgz
# The programs are framework-dependent and run on the private runtime that artifacts/e2e-gpu.tgz carries.
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string]$Baseline,
    [string]$Configuration = 'Release'
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
. (Join-Path $PSScriptRoot 'publish-common.ps1')
$Root = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
$Stage = Join-Path $Root 'artifacts/eval-ab'
$Archive = Join-Path $Root 'artifacts/eval-ab.tgz'
$BaseTree = Join-Path $Root 'artifacts/eval-ab-src'
$Project = 'tests/ExpertBridge.Policies.Evaluation'

$rev = (git -C $Root rev-parse --verify --quiet "$Baseline^{commit}")
if ($LASTEXITCODE -ne 0 -or -not $rev) { throw "-Baseline '$Baseline' is not a commit of this repository" }
$head = (git -C $Root rev-parse --short HEAD)
$dirty = if (git -C $Root status --porcelain --untracked-files=no) { ' with uncommitted changes' } else { '' }

function Publish-Evaluation([string]$Tree, [string]$Name) {
    Write-Host "==> publish $Project ($Name) -> artifacts/eval-ab/$Name" -ForegroundColor Cyan
    Publish-FrameworkDependent (Join-Path $Tree $Project) $Configuration (Join-Path $Stage $Name)
}

New-Stage $Stage
if (Test-Path $BaseTree) { git -C $Root worktree remove --force $BaseTree | Out-Null; Remove-Item -Recurse -Force $BaseTree -ErrorAction SilentlyContinue }
git -C $Root worktree add --detach $BaseTree $rev | Out-Host
if ($LASTEXITCODE -ne 0) { throw "git worktree add $rev failed (exit $LASTEXITCODE)" }
try {
    Publish-Evaluation $Root 'new'
    Publish-Evaluation $BaseTree 'base'
}
finally {
    git -C $Root worktree remove --force $BaseTree | Out-Null
}

Remove-Symbols $Stage
Copy-Item (Join-Path $PSScriptRoot 'run-cpu-ab.sh') $Stage
"new: $head$dirty`nbase: $($rev.Substring(0, 7))" | Set-Content (Join-Path $Stage 'revisions.txt')
Write-Archive $Stage $Archive "evaluation harness at $head$dirty (new) and $($rev.Substring(0, 7)) (base)" -FailAboveMb 24 -Hint 'carry it with artifacts/e2e-gpu.tgz: the two must stay under 64 MiB'
