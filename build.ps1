#!/usr/bin/env pwsh
# ExpertBridge build entry point. On a fresh machine with only the .NET SDK:
#   dotnet tool restore && dotnet pwsh ./build.ps1 <verb>
# Verbs:
#   build      restore and build the solution (Release) and the native parts (emulators, C shim)
#   test       build, then run every test project; prints "tests: N passed, N failed, N skipped"
#   run        the main job (README): the end-to-end demo
#   bench      BenchmarkDotNet suites (tests/ExpertBridge.Benchmarks); pass extra args after the verb
#   pack       dotnet tool package of the CLI into artifacts/pkg
#   publish    the CLI (offline verbs and the serve daemon) self-contained, composite ReadyToRun, for this machine's
#              platform, into artifacts/publish/<rid>: the fastest first compile of a policy script (docs/benchmarks.md)
#   generate   regenerate bindings/<target>/Generated from the API manifests (libclang)
#   abi-check  compile the generated ABI checks against the vendors' real headers where present
#   publish-gpu  self-contained builds for the GPU machine into artifacts/gpu.tgz
[CmdletBinding()]
param(
    [Parameter(Position = 0)]
    [ValidateSet('build', 'test', 'run', 'bench', 'pack', 'publish', 'generate', 'abi-check', 'publish-gpu', 'help')]
    [string]$Verb = 'help',
    [string]$Configuration = 'Release',
    [Parameter(ValueFromRemainingArguments = $true)]
    [string[]]$Rest = @()
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$Root = $PSScriptRoot
$Artifacts = Join-Path $Root 'artifacts'
$env:DOTNET_CLI_TELEMETRY_OPTOUT = '1'
$env:DOTNET_NOLOGO = '1'
$env:DOTNET_SKIP_FIRST_TIME_EXPERIENCE = '1'

function Invoke-Step([string]$What, [scriptblock]$Block) {
    Write-Host "==> $What" -ForegroundColor Cyan
    & $Block
    if ($LASTEXITCODE -ne 0) { throw "$What failed (exit $LASTEXITCODE)" }
}

function Build-Native {
    # Native parts live beside their owners; each has a CMakeLists.txt. Built into artifacts/native.
    $native = Join-Path $Artifacts 'native'
    $projects = @(Get-ChildItem -Path (Join-Path $Root 'src'), (Join-Path $Root 'tests') -Recurse -Filter CMakeLists.txt -ErrorAction SilentlyContinue |
        Where-Object { $_.FullName -notmatch '[\\/](bin|obj)[\\/]' })
    foreach ($cm in $projects) {
        $dir = $cm.Directory.FullName
        $name = $cm.Directory.Name
        $buildDir = Join-Path $native "build-$name"
        Invoke-Step "cmake configure $name" { cmake -S $dir -B $buildDir -DCMAKE_BUILD_TYPE=Release -DEB_OUTPUT_DIR="$native" | Out-Host }
        Invoke-Step "cmake build $name" { cmake --build $buildDir --parallel 2 | Out-Host }
    }
}

function Build-All {
    Build-Native
    Invoke-Step 'dotnet build' { dotnet build (Join-Path $Root 'Bridge.sln') -c $Configuration -nologo -clp:NoSummary }
}

function Test-All {
    Build-All
    $log = Join-Path $Artifacts 'test.log'
    New-Item -ItemType Directory -Force -Path $Artifacts | Out-Null
    Write-Host '==> dotnet test' -ForegroundColor Cyan
    dotnet test --solution (Join-Path $Root 'Bridge.sln') -c $Configuration --no-build @Rest 2>&1 | Tee-Object -FilePath $log | Out-Host
    $code = $LASTEXITCODE
    $text = Get-Content -Raw $log
    $sum = @{ total = 0; failed = 0; succeeded = 0; skipped = 0 }
    foreach ($k in @('total', 'failed', 'succeeded', 'skipped')) {
        $m = [regex]::Matches($text, "(?m)^\s*${k}:\s*(\d+)\s*$")
        if ($m.Count -gt 0) { $sum[$k] = [int]$m[$m.Count - 1].Groups[1].Value }
    }
    Write-Host ''
    Write-Host ("tests: {0} passed, {1} failed, {2} skipped" -f $sum.succeeded, $sum.failed, $sum.skipped)
    if ($code -ne 0) { throw "dotnet test failed (exit $code)" }
    if ($sum.total -eq 0) { throw 'dotnet test ran no test' }
}

switch ($Verb) {
    'build' { Build-All }
    'test' { Test-All }
    'run' {
        Build-All
        & (Join-Path $Root 'examples/run-e2e.ps1') -Configuration $Configuration @Rest
        if ($LASTEXITCODE -ne 0) { throw "demo failed (exit $LASTEXITCODE)" }
    }
    'bench' {
        Invoke-Step 'benchmarks' { dotnet run --project (Join-Path $Root 'tests/ExpertBridge.Benchmarks') -c Release -- @Rest }
    }
    'pack' {
        Invoke-Step 'pack' { dotnet pack (Join-Path $Root 'src/ExpertBridge.Cli') -c Release -o (Join-Path $Artifacts 'pkg') }
    }
    'publish' {
        # Self-contained and composite: the framework and Roslyn precompiled as one image, so the generic code Roslyn
        # instantiates over the framework's types is precompiled too (plain ReadyToRun leaves it to the JIT). About
        # 150 MB; a policy script's first compile takes a third to a half less than with framework-dependent ReadyToRun.
        $arch = [System.Runtime.InteropServices.RuntimeInformation]::OSArchitecture.ToString().ToLowerInvariant()
        $os = if ($IsWindows) { 'win' } elseif ($IsMacOS) { 'osx' } else { 'linux' }
        $rid = "$os-$arch"
        $out = Join-Path $Artifacts "publish/$rid"
        Invoke-Step "publish expertbridge ($rid, self-contained, composite ReadyToRun) -> $out" {
            dotnet publish (Join-Path $Root 'src/ExpertBridge.Cli') -c $Configuration -r $rid --self-contained true `
                -p:PublishReadyToRun=true -p:PublishReadyToRunComposite=true -p:SatelliteResourceLanguages=en -o $out -nologo -clp:NoSummary
        }
    }
    'generate' {
        Invoke-Step 'generate bindings' { dotnet run --project (Join-Path $Root 'bindings/generator') -c Release -- --all --root $Root @Rest }
    }
    'abi-check' {
        & (Join-Path $Root 'bindings/abi-check.ps1') @Rest
        if ($LASTEXITCODE -ne 0) { throw "abi-check failed (exit $LASTEXITCODE)" }
    }
    'publish-gpu' {
        & (Join-Path $Root 'tests/gpu/publish.ps1') @Rest
        if ($LASTEXITCODE -ne 0) { throw "publish-gpu failed (exit $LASTEXITCODE)" }
    }
    default {
        Get-Content $PSCommandPath | Select-Object -Skip 1 | ForEach-Object -Begin { $inHeader = $true } -Process {
            if ($inHeader -and $_.StartsWith('#')) { $_ -replace '^# ?', '' } else { $inHeader = $false }
        }
    }
}
