#!/usr/bin/env pwsh
# build.ps1 abi-check: the check itself is bindings/abi-check.sh (bash + gcc only, so it also runs on the GPU
# machine, which has no .NET or PowerShell). Arguments and environment (CUDA_INCLUDE, NCCL_INCLUDE,
# ASCEND_HOME_PATH) pass through; the exit code is the script's.
$ErrorActionPreference = 'Stop'
& bash (Join-Path $PSScriptRoot 'abi-check.sh') @args
exit $LASTEXITCODE
