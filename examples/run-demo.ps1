# Placeholder until the end-to-end example exists: a replay demo through the CLI.
param([string]$Configuration = 'Release')
$ErrorActionPreference = 'Stop'
$root = Split-Path -Parent $PSScriptRoot
dotnet run --project (Join-Path $root 'src/ExpertBridge.Cli') -c $Configuration --no-build -- --help
