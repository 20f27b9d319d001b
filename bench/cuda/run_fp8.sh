#!/usr/bin/env bash
# FP8 (--quantization fp8) on a GPU machine in one call (~5 minutes): the FP8 op tests on CUDA and compute-sanitizer
# on them, the parity suite's cuda_fp8 cases (transformers' vectors, bitwise batch invariance, chunked prefill),
# `embedserve bench` bf16 next to fp8 at 512-token inputs on random checkpoints of the 4B and 8B shapes, and the 4B's
# accuracy against transformers float32 (texts of 1 to 8,000 tokens; fp8 next to bf16 and transformers bf16), the
# retrieval agreement (200 queries × 2,000 documents) and fp8 batch invariance at the real shapes
# (bench/cuda/compare_fp8.py). Binaries come built from .carry/cuda-bin.tar.xz (embedserve, op_suite_test,
# ops_cuda_test, model_parity_test), as for run_on_device.sh; logs go under $OUT.
#   bash bench/cuda/run_fp8.sh
#   STEPS="bench" bash bench/cuda/run_fp8.sh          # some of: tests sanitizer parity bench compare
source "$(dirname "$0")/device_env.sh"

step "machine"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv,noheader | tee "$OUT/gpu.txt"

STEPS=${STEPS:-tests sanitizer parity bench compare}
want() { [[ " $STEPS " == *" $1 "* ]]; }
Q4B=/tmp/qwen3-4b-random
Q8B=/tmp/qwen3-8b-random
pids=()
if want bench || want compare; then  # written while the tests run; kept from an earlier call on a warm machine
  for pair in "4B $Q4B" "8B $Q8B"; do
    set -- $pair
    [ "$1" = 8B ] && ! want bench && continue
    { random_checkpoint "$1" "$2" "$OUT/checkpoint_$1.log" && cp tests/data/qwen3-tokenizer/* "$2/"; } &
    pids+=($!)
  done
fi

if want tests; then
  step "FP8 op tests on the GPU (LinearFp8.*/cuda_fp8, Float8.*; ops_cuda_test's Fp8Cuda.*: quantiser, both scale paths)"
  "$BIN/op_suite_test" --gtest_filter='*LinearFp8*:*Float8*' > "$OUT/fp8_ops.log" 2>&1 || status=1
  "$BIN/ops_cuda_test" --gtest_filter='Fp8Cuda.*' >> "$OUT/fp8_ops.log" 2>&1 || status=1
  grep -E "FAILED|Failure|Expected|Which is|OK \]|worst error|outer-vector" "$OUT/fp8_ops.log" | head -30
fi
if want sanitizer; then
  step "compute-sanitizer memcheck on the FP8 op tests"
  compute-sanitizer --tool memcheck --leak-check full --error-exitcode 9 "$BIN/op_suite_test" \
    --gtest_filter='*LinearFp8*cuda*' > "$OUT/memcheck_fp8.log" 2>&1 || status=1
  tail -2 "$OUT/memcheck_fp8.log"
  compute-sanitizer --tool memcheck --error-exitcode 9 "$BIN/ops_cuda_test" --gtest_filter='Fp8Cuda.*' \
    > "$OUT/memcheck_fp8_gemm.log" 2>&1 || status=1
  tail -2 "$OUT/memcheck_fp8_gemm.log"
fi
if want parity; then
  step "parity suite, cuda_fp8 (and cpu_fp8) cases"
  MODELS=$BUILD_ROOT/build/tests/model_parity/models
  for p in tiny-bf16 tiny-f32-sharded tiny-f16-gqa tiny-vocab151665-mean; do
    python3 tools/make_random_model.py --preset $p --out "$MODELS/$p" > /dev/null || status=1
  done
  "$BIN/model_parity_test" --gtest_filter='*_fp8*' > "$OUT/parity_fp8.log" 2>&1 || status=1
  grep -E "min cosine|max \|diff\||PASSED|FAILED|Failure|Expected|Which is|SKIPPED \]" "$OUT/parity_fp8.log" | head -40
fi

if [ ${#pids[@]} -gt 0 ]; then
  step "checkpoints"
  wait "${pids[@]}"
  tail -q -n 1 "$OUT"/checkpoint_*.log 2>/dev/null
fi
if want bench; then
  # bf16 and fp8 alternating, twice, so a drift of the card's clocks shows as a spread rather than a difference.
  for m in $Q4B $Q8B; do
    for round in 1 2; do
      for mode in bf16 fp8; do
        flags=(); [ $mode = fp8 ] && flags=(--quantization fp8)
        step "bench $(basename $m) $mode, round $round: 512-token inputs in 16,384-token batches"
        "$BIN/embedserve" bench --model-path $m --device cuda "${flags[@]}" --seq-len 512 --batch-tokens 16384 \
          --seconds ${BENCH_SECONDS:-3} 2>&1 | tee "$OUT/bench_$(basename $m)_${mode}_$round.log"
      done
    done
    step "bench $(basename $m): one 16-token query, bf16 then fp8"
    for mode in bf16 fp8; do
      flags=(); [ $mode = fp8 ] && flags=(--quantization fp8)
      "$BIN/embedserve" bench --model-path $m --device cuda "${flags[@]}" --seq-len 16 --batch-tokens 16 --seconds 2 \
        2>&1 | tail -1 | sed "s/^/$mode /"
    done
  done
fi
if want compare; then
  step "4B: fp8 and bf16 against transformers f32 (1 to 8,000 tokens), retrieval agreement, fp8 batch invariance"
  timeout 420 python3 bench/cuda/compare_fp8.py --embedserve "$BIN/embedserve" --workdir /tmp/fp8-4b --model $Q4B \
    ${COMPARE_ARGS:-} 2>&1 | grep -v "^embedserve embed:" | tee "$OUT/compare_fp8_4b.log" || status=1
fi
exit $status
