#!/usr/bin/env bash
# Packs what the GPU machine runs into .carry/cuda-bin.tar.xz (git-ignored; the device tool's carry): embedserve and
# the GPU test and bench binaries from build/, stripped, and embedserve_mma, a wrapper running embedserve with
# EMBEDSERVE_ATTENTION_KERNEL=mma (and embedserve_gemmex, with EMBEDSERVE_GEMM_TUNING=0), so the bench/cuda scripts measure the attention kernels side by side from one binary.
#   bash bench/cuda/pack_carry.sh [extra binaries under build/ ...]     # after cmake --build build
set -euo pipefail
cd "$(dirname "$0")/../.."
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
for b in embedserve tests/ops/op_suite_test tests/ops_cuda/ops_cuda_test tests/model/model_test \
         tests/engine/engine_test tests/model_parity/model_parity_test bench/ops/attention_bench bench/ops/gemm_algo_bench \
         bench/server/load/embedserve_http_load "$@"; do
  [ -x "build/$b" ] || { echo "pack_carry: build/$b is missing (cmake --build build first)" >&2; exit 1; }
  cp "build/$b" "$stage/"
done
strip "$stage"/*
cat > "$stage/embedserve_mma" <<'WRAPPER'
#!/bin/sh
# embedserve with its attention on the mma.sync kernel (the one before the Hopper kernel), for side-by-side runs.
EMBEDSERVE_ATTENTION_KERNEL=mma exec "$(dirname "$0")/embedserve" "$@"
WRAPPER
chmod +x "$stage/embedserve_mma"
cat > "$stage/embedserve_gemmex" <<'WRAPPER'
#!/bin/sh
# embedserve with cublasGemmEx's own kernel choice instead of the tuned GEMMs (ops/cuda/tuned_gemm.h), side by side.
EMBEDSERVE_GEMM_TUNING=0 exec "$(dirname "$0")/embedserve" "$@"
WRAPPER
chmod +x "$stage/embedserve_gemmex"
mkdir -p .carry
tar -C "$stage" -I 'xz -T2 -3' -cf .carry/cuda-bin.tar.xz .
ls -la .carry/cuda-bin.tar.xz
