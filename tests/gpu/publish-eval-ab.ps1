#!/usr/bin/env pwsh
# Packs a CPU harness twice, for a before/after comparison on a quiet machine: the working tree ("new") and a
# baseline git revision ("base"). Timings from different machines of one kind, or from runs minutes apart, do not
# compare (docs/benchmarks.md): run-cpu-ab.sh alternates the two builds within one call.
#   -Harness evaluation (default): tests/ExpertBridge.Policies.Evaluation (OmniPlacement CPU time) -> artifacts/eval-ab.tgz
#   -Harness scripting: tests/ExpertBridge.Scripting.Bench, ReadyToRun (script compile and swap) -> artifacts/scripting-ab.tgz
# Files of "base" identical to those of "new" are left out of the archive (run-cpu-ab.sh copies them back), so two
# ReadyToRun builds of Roslyn cost the room of one.
#   dotnet pwsh tests/gpu/publish-eval-ab.ps1 -Baseline 6bf4120 [-Harness scripting]
#   on the GPU machine (no .NET there): bash tests/gpu/run-cpu-ab.sh artifacts/eval-ab.tgz artifacts/e2e-gpu.tgz
# The programs are framework-dependent and run on the private runtime that artifacts/e2e-gpu.tgz carries.
[CmdletBinding()]
param(
    [Parameter(Mandatory)][string]$Baseline,
    [ValidateSet('evaluation', 'scripting')][string]$Harness = 'evaluation',
    [string]$Configuration = 'Release'
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
. (Join-Path $PSScriptRoot 'publish-common.ps1')
$Root = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
$Name = if ($Harness -eq 'scripting') { 'scripting-ab' } else { 'eval-ab' }
$Stage = Join-Path $Root "artifacts/$Name"
$Archive = Join-Path $Root "artifacts/$Name.tgz"
$BaseTree = Join-Path $Root "artifacts/$Name-src"
$Project = if ($Harness -eq 'scripting') { 'tests/ExpertBridge.Scripting.Bench' } else { 'tests/ExpertBridge.Policies.Evaluation' }

$rev = (git -C $Root rev-parse --verify --quiet "$Baseline^{commit}")
if ($LASTEXITCODE -ne 0 -or -not $rev) { throw "-Baseline '$Baseline' is not a commit of this repository" }
$head = (git -C $Root rev-parse --short HEAD)
$dirty = if (git -C $Root status --porcelain --untracked-files=no) { ' with uncommitted changes' } else { '' }

function Publish-Harness([string]$Tree, [string]$Build) {
    Write-Host "==> publish $Project ($Build) -> artifacts/$Name/$Build" -ForegroundColor Cyan
    Publish-FrameworkDependent (Join-Path $Tree $Project) $Configuration (Join-Path $Stage $Build) -ReadyToRun:($Harness -eq 'scripting')
}

New-Stage $Stage
if (Test-Path $BaseTree) { git -C $Root worktree remove --force $BaseTree | Out-Null; Remove-Item -Recurse -Force $BaseTree -ErrorAction SilentlyContinue }
git -C $Root worktree add --detach $BaseTree $rev | Out-Host
if ($LASTEXITCODE -ne 0) { throw "git worktree add $rev failed (exit $LASTEXITCODE)" }
try {
    Publish-Harness $Root 'new'
    Publish-Harness $BaseTree 'base'
}
finally {
    git -C $Root worktree remove --force $BaseTree | Out-Null
}

Remove-Symbols $Stage
$newDir = Join-Path $Stage 'new'
foreach ($file in Get-ChildItem (Join-Path $Stage 'base') -Recurse -File) {
    $twin = Join-Path $newDir ([IO.Path]::GetRelativePath((Join-Path $Stage 'base'), $file.FullName))
    if ((Test-Path $twin) -and (Get-FileHash $twin).Hash -eq (Get-FileHash $file.FullName).Hash) { Remove-Item -Force $file.FullName }
}
Copy-Item (Join-Path $PSScriptRoot 'run-cpu-ab.sh') $Stage
"new: $head$dirty`nbase: $($rev.Substring(0, 7))" | Set-Content (Join-Path $Stage 'revisions.txt')
Write-Archive $Stage $Archive "$Harness harness at $head$dirty (new) and $($rev.Substring(0, 7)) (base)" -FailAboveMb 24 -Hint 'carry it with artifacts/e2e-gpu.tgz: the two must stay under 64 MiB'
