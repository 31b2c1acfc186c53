# Dot-sourced by the publish-*.ps1 scripts: the staging folder and the archive every GPU-machine bundle is made of.
# The GPU machine receives at most 64 MiB (the tree plus the archives named in carry), so each archive has a budget.

# A fresh, empty staging folder at $Path.
function New-Stage([string]$Path) {
    if (Test-Path $Path) { Remove-Item -Recurse -Force $Path }
    New-Item -ItemType Directory -Force -Path $Path | Out-Null
}

# Packs $Stage into $Archive (tar.gz), prints its size with $What, and enforces the budget: above $FailAboveMb
# throws, above $WarnAboveMb warns (0: no check).
function Write-Archive([string]$Stage, [string]$Archive, [string]$What, [double]$FailAboveMb = 0, [double]$WarnAboveMb = 0, [string]$Hint = '') {
    if (Test-Path $Archive) { Remove-Item -Force $Archive }
    tar czf $Archive -C $Stage .
    if ($LASTEXITCODE -ne 0) { throw "tar failed (exit $LASTEXITCODE)" }
    $name = Split-Path -Leaf $Archive
    $mb = [math]::Round((Get-Item $Archive).Length / 1MB, 1)
    Write-Host "artifacts/${name}: $mb MB ($What)"
    if ($FailAboveMb -gt 0 -and $mb -gt $FailAboveMb) { throw "artifacts/$name is $mb MB: $Hint" }
    if ($WarnAboveMb -gt 0 -and $mb -gt $WarnAboveMb) { Write-Warning "artifacts/$name is $mb MB, above the ~$WarnAboveMb MB budget" }
}

# Publishes $Project (a path) in $Configuration, framework-dependent for linux-x64, into $Out, to run on a bundled
# private runtime; -ReadyToRun precompiles it. Throws on failure.
function Publish-FrameworkDependent([string]$Project, [string]$Configuration, [string]$Out, [switch]$ReadyToRun) {
    dotnet publish $Project -c $Configuration -r linux-x64 --self-contained false `
        "-p:PublishReadyToRun=$($ReadyToRun.IsPresent.ToString().ToLowerInvariant())" -p:SatelliteResourceLanguages=en `
        -o $Out -nologo -clp:NoSummary | Out-Host
    if ($LASTEXITCODE -ne 0) { throw "dotnet publish $Project failed (exit $LASTEXITCODE)" }
}

# Removes debug symbols and XML docs under $Path: the GPU machine runs the programs, nobody debugs them there.
function Remove-Symbols([string]$Path) {
    Get-ChildItem $Path -Recurse -Include '*.pdb', '*.xml' | Remove-Item -Force
}
