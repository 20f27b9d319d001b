#!/usr/bin/env bash
# Where kernels lose time, on the GPU machine, in one call (device time is scarce). DIAG_STEPS picks (default all):
#   attention    ncu's full sections (stall reasons, samples per SASS line) for the kernel attention() picks, at
#                DIAG_LENGTHS tokens (default 512 and 32,768);
#   elementwise  ncu's full sections for one launch of each pass between the GEMMs (q/k norm + RoPE, SwiGLU, add +
#                norm) in the 0.6B's 16,384-token batch of 512-token inputs, for embedserve and, when the carry holds
#                it, embedserve_base: duration, bytes per second, and warps issued per scheduler per cycle, which tells
#                an instruction-bound pass (near 1) from a memory-bound one (DIAG_KERNELS: some of those passes);
#   clocks       the card's clocks and power while the 0.6B's bulk bench runs.
# (run_on_device.sh's profile step gives each kernel's share of a batch.)
#   bash bench/cuda/diagnose_kernels.sh     # carry .carry/cuda-bin.tar.xz; logs under $OUT
source "$(dirname "$0")/device_env.sh"
SMALL=/tmp/qwen3-0.6b-random
random_checkpoint 0.6B $SMALL "$OUT/checkpoint.log" &  # the one run_on_device.sh writes too
ckpt=$!
DIAG_STEPS=${DIAG_STEPS:-attention elementwise clocks}
want() { [[ " $DIAG_STEPS " == *" $1 "* ]]; }
if want attention; then
  for len in ${DIAG_LENGTHS:-512 32768}; do
    step "ncu full: attention at $len tokens"
    ncu --clock-control none --set full --import-source no -k regex:attention_wgmma -c 1 -f -o /tmp/att_$len \
      "$BIN/attention_bench" 32768 $len > "$OUT/ncu_att_$len.log" 2>&1
    tail -3 "$OUT/ncu_att_$len.log"
    ncu -i /tmp/att_$len.ncu-rep --page details > "$OUT/att_${len}_details.txt" 2>&1
    ncu -i /tmp/att_$len.ncu-rep --page source --csv --print-source sass > "$OUT/att_${len}_sass.csv" 2>&1
    grep -E "Duration|Registers|Achieved Occupancy|Compute \(SM\) Throughput|Memory Throughput|Issued Ipc|No Eligible" \
      "$OUT/att_${len}_details.txt" | head -12
    python3 bench/cuda/sass_stalls.py "$OUT/att_${len}_sass.csv" --top 12
  done
fi
wait $ckpt
if want elementwise; then
  for b in embedserve_base embedserve; do
    [ -x "$BIN/$b" ] || continue
    # -s 400: past the launches of loading and of the one-query graphs recorded then, into the bench's batches.
    for kernel in ${DIAG_KERNELS:-qk_norm_rope silu_mul add_rms_norm}; do
      step "ncu full: $kernel in the 0.6B's 16,384-token batch ($b)"
      ncu --clock-control none --set full --import-source no -k regex:$kernel -s 400 -c 1 -f -o /tmp/ew_${b}_$kernel \
        "$BIN/$b" bench --model-path $SMALL --device cuda --seq-len 512 --batch-tokens 16384 --seconds 1 \
        > "$OUT/ncu_${b}_$kernel.log" 2>&1 || status=1
      ncu -i /tmp/ew_${b}_$kernel.ncu-rep --page details > "$OUT/${b}_${kernel}_details.txt" 2>&1
      grep -E "$kernel|Duration|DRAM Throughput|Memory Throughput|Issued Warp Per Scheduler|Registers Per|Achieved Occupancy" \
        "$OUT/${b}_${kernel}_details.txt" | head -8
    done
  done
fi
if want clocks; then
  step "clocks and power while the 0.6B bulk bench runs (5 s)"
  nvidia-smi --query-gpu=clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu,clocks_throttle_reasons.active \
    --format=csv -lms 250 > "$OUT/clocks.csv" 2>&1 &
  smi=$!
  "$BIN/embedserve" bench --model-path $SMALL --device cuda --seq-len 512 --batch-tokens 16384 --seconds 5 2>&1 | tail -2
  kill $smi
  sort "$OUT/clocks.csv" | uniq -c | sort -rn | head -8
fi
[ -n "${DIAG_NO_TAR:-}" ] || { cd "$OUT" && tar czf /tmp/logs.tgz . && find . -mindepth 1 -delete && mv /tmp/logs.tgz "$OUT/"; }
exit $status
