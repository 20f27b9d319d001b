#!/usr/bin/env bash
# The CUDA backend's whole check on a GPU machine in one go (device time is scarce): op tests, compute-sanitizer,
# the transformers parity suite on the GPU in f32 and bf16, then throughput and latency on a random checkpoint of
# the real 4B shape. Takes the binaries built elsewhere from .carry/ (ops_cuda_test, model_parity_test,
# embedserve, or .carry/cuda-bin.tar.xz holding them; see docs/PERFORMANCE.md, "CUDA engine"); writes logs
# under $OUT (or ./cuda-logs).
#   bash bench/cuda/run_on_device.sh                       # everything
#   STEPS="compare" bash bench/cuda/run_on_device.sh       # some of: tests parity sanitizer compare bench
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
OUT=${OUT:-$ROOT/cuda-logs}
mkdir -p "$OUT"
BIN=$ROOT/.carry
# The binaries travel compressed (the device tool carries at most 64 MiB): tar -cJf .carry/cuda-bin.tar.xz ...
if [ -f "$BIN/cuda-bin.tar.xz" ]; then
  mkdir -p /tmp/cuda-bin && tar -xJf "$BIN/cuda-bin.tar.xz" -C /tmp/cuda-bin && BIN=/tmp/cuda-bin
fi
status=0
step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$OUT/gpu.txt"

# The test binaries carry the build machine's source paths (tests/data, the parity models' folder).
BUILD_ROOT=/work/main
if [ "$ROOT" != "$BUILD_ROOT" ] && [ ! -e "$BUILD_ROOT" ]; then mkdir -p /work && ln -s "$ROOT" "$BUILD_ROOT"; fi

# cuBLAS: the loader's path, else CUDA's folder, else PyTorch's pip wheel.
if ! ldconfig -p | grep -q 'libcublas.so.13' && [ ! -e /usr/local/cuda/lib64/libcublas.so.13 ]; then
  EMBEDSERVE_CUBLAS_PATH=$(python3 -c 'import nvidia.cublas, os; print(os.path.join(os.path.dirname(nvidia.cublas.__file__), "lib"))')
  export EMBEDSERVE_CUBLAS_PATH
fi
echo "EMBEDSERVE_CUBLAS_PATH=${EMBEDSERVE_CUBLAS_PATH:-(loader path)}"

STEPS=${STEPS:-tests parity sanitizer compare bench}
want() { [[ " $STEPS " == *" $1 "* ]]; }
CKPT=/tmp/qwen3-4b-random
if want bench || want compare; then  # the 8 GB checkpoint is written while the tests run
  python3 bench/engine/make_random_checkpoint.py --config tests/data/configs/4B --out $CKPT > "$OUT/checkpoint.log" 2>&1 &
  ckpt_pid=$!
fi

if want tests; then
  step "op tests"
  "$BIN/ops_cuda_test" > "$OUT/ops_cuda_test.log" 2>&1 || status=1
  grep -E "FAILED|Failure|SKIPPED \[" "$OUT/ops_cuda_test.log" | head -30
  tail -3 "$OUT/ops_cuda_test.log"
fi

step "parity models"
MODELS=$BUILD_ROOT/build-gpu/tests/model_parity/models
for p in tiny-bf16 tiny-f32-sharded tiny-f16-gqa tiny-vocab151665-mean; do
  python3 tools/make_random_model.py --preset $p --out "$MODELS/$p" > /dev/null || status=1
done

for dt in f32 bf16; do
  want parity || break
  step "parity suite on cuda, $dt"
  EMBEDSERVE_PARITY_DEVICE=cuda EMBEDSERVE_PARITY_DTYPE=$dt "$BIN/model_parity_test" > "$OUT/parity_$dt.log" 2>&1 || status=1
  grep -E "min cosine|max \|diff\||PASSED|FAILED|Failure|Expected|Which is" "$OUT/parity_$dt.log" | head -40
done

if want sanitizer; then
  step "compute-sanitizer"
  compute-sanitizer --tool memcheck --leak-check full --error-exitcode 9 "$BIN/ops_cuda_test" > "$OUT/memcheck_ops.log" 2>&1 || status=1
  tail -2 "$OUT/memcheck_ops.log"
  compute-sanitizer --tool racecheck --error-exitcode 9 "$BIN/ops_cuda_test" --gtest_filter='*Attention*:*Pooling*:*RmsNorm*' \
    > "$OUT/racecheck_ops.log" 2>&1 || status=1
  tail -2 "$OUT/racecheck_ops.log"
  EMBEDSERVE_PARITY_DEVICE=cuda compute-sanitizer --tool memcheck --error-exitcode 9 "$BIN/model_parity_test" \
    --gtest_filter='Presets/ModelParity.*/tiny_f16_gqa' > "$OUT/memcheck_model.log" 2>&1 || status=1
  tail -2 "$OUT/memcheck_model.log"
fi

if want compare; then
  step "bf16 against transformers' bf16 and float32 (head_dim 128: the tensor-core attention); batch invariance"
  python3 bench/cuda/compare_bf16.py --embedserve "$BIN/embedserve" --workdir /tmp/cmp-hd128 2>&1 | tee "$OUT/compare_hd128.log" || status=1
fi
if want bench || want compare; then
  step "4B-shape checkpoint"
  wait "$ckpt_pid"
  cat "$OUT/checkpoint.log"
  cp tests/data/qwen3-tokenizer/* "$CKPT/"  # for `embedserve embed` in the comparison
fi
if want compare; then
  step "4B shape: bf16 vs f32 and batch invariance at the real GEMM shapes"
  python3 bench/cuda/compare_bf16.py --embedserve "$BIN/embedserve" --workdir /tmp/cmp-4b --model $CKPT \
    --skip-transformers 2>&1 | tee "$OUT/compare_4b.log" || status=1
fi
if want bench; then
  step "bench: 4B shape, bf16, 16/512/2048-token inputs at 16384 tokens per batch; one 16-token query"
  # 16-token inputs cost almost no attention, so 512 and 2048 against them show what attention adds.
  "$BIN/embedserve" bench --model-path $CKPT --device cuda --seq-len 16,512,2048 --max-num-batched-tokens 16384 --seconds 8 2>&1 | tee "$OUT/bench_bf16.log"
  "$BIN/embedserve" bench --model-path $CKPT --device cuda --seq-len 16 --max-num-batched-tokens 16 --seconds 5 2>&1 | tee "$OUT/bench_query.log"
  step "bench: 4B shape, f32 (parity mode), 512-token inputs"
  "$BIN/embedserve" bench --model-path $CKPT --device cuda --dtype f32 --seq-len 512 --max-num-batched-tokens 16384 --seconds 5 2>&1 | tee "$OUT/bench_f32.log"
  step "bench: one 32768-token input (memory and the attention kernel at length)"
  timeout 200 "$BIN/embedserve" bench --model-path $CKPT --device cuda --seq-len 32768 --max-num-batched-tokens 32768 --seconds 0 2>&1 | tee "$OUT/bench_32k.log"
fi
echo
echo "overall status: $status"
exit $status
