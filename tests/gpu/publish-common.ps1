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
