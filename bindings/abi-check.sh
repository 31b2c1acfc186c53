#!/usr/bin/env bash
# ABI check of the generated bindings against the vendors' real headers: compiles each target's
# Generated/abi_check.{c,cpp} with gcc/g++ -fsyntax-only. Needs only bash and gcc (runs on the GPU machine,
# which has no .NET). Prints pass / FAIL (with the compiler's errors) / skipped (header absent) per target.
# Header locations, each overridable from the environment:
#   CUDA_INCLUDE      /usr/local/cuda/include                        cuda.h
#   NCCL_INCLUDE      /usr/include                                   nccl.h (which also needs CUDA_INCLUDE)
#   ASCEND_HOME_PATH  /usr/local/Ascend/ascend-toolkit/latest        include/acl/acl.h, include/hccl/hccl.h
# Exit status: 0 when no check failed, 1 otherwise.
set -u
cd "$(dirname "$0")"
CC="${CC:-gcc}"
CXX="${CXX:-g++}"
cuda_inc="${CUDA_INCLUDE:-/usr/local/cuda/include}"
nccl_inc="${NCCL_INCLUDE:-/usr/include}"
ascend_inc="${ASCEND_HOME_PATH:-/usr/local/Ascend/ascend-toolkit/latest}/include"
passed=0
failed=0
skipped=0

# check NAME HEADER COMPILER STD SOURCE INCLUDE_DIR...
check() {
    local name=$1 header=$2 compiler=$3 std=$4 source=$5
    shift 5
    if [ ! -f "$header" ]; then
        echo "abi-check $name: skipped ($header not found)"
        skipped=$((skipped + 1))
        return
    fi
    if ! command -v "$compiler" >/dev/null 2>&1; then
        echo "abi-check $name: FAIL ($compiler not found; $header exists)"
        failed=$((failed + 1))
        return
    fi
    local flags=() dir out
    for dir in "$@"; do flags+=(-I "$dir"); done
    if out=$("$compiler" "-std=$std" -fsyntax-only "${flags[@]}" "$source" 2>&1); then
        echo "abi-check $name: pass ($compiler -std=$std, $header)"
        passed=$((passed + 1))
    else
        echo "abi-check $name: FAIL ($compiler -std=$std, $header)"
        echo "$out" | grep -E 'error' | head -n 40 | sed 's/^/    /'
        failed=$((failed + 1))
    fi
}

check cuda "$cuda_inc/cuda.h" "$CC" gnu11 cuda/Generated/abi_check.c "$cuda_inc"
check nccl "$nccl_inc/nccl.h" "$CC" gnu11 nccl/Generated/abi_check.c "$nccl_inc" "$cuda_inc"
check acl "$ascend_inc/acl/acl.h" "$CXX" gnu++17 acl/Generated/abi_check.cpp "$ascend_inc"
check hccl "$ascend_inc/hccl/hccl.h" "$CXX" gnu++17 hccl/Generated/abi_check.cpp "$ascend_inc"
echo "abi-check summary: pass=$passed fail=$failed skipped=$skipped"
[ "$failed" -eq 0 ]
