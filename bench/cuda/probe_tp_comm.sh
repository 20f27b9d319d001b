#!/usr/bin/env bash
# Where tensor parallelism's time goes at one 2,048-token input on the 8B (nvidia-h200-x2): `embedserve bench --tp 2`
# by peer reads (the default) and by NCCL under its settings and overlap modes (halves of the rows, row-parallel
# GEMMs in pieces: NCCL groups only, hence EMBEDSERVE_TP_SUM=nccl on those lines) side by side with --tp 1,
# and, where nsys is installed, the GPU time per kernel of a whole-batch run and an overlapped one. Takes the binaries from .carry/cuda-bin.tar.xz as run_tp.sh.
#   bash bench/cuda/probe_tp_comm.sh
source "$(dirname "$0")/device_env.sh"
MODEL=/tmp/qwen3-8b-random
random_checkpoint 8B $MODEL "$OUT/checkpoint_8b.log"
latency() {  # NAME TP ENV...: ms per 2,048-token input
  local name=$1 tp=$2
  shift 2
  # Each run has a minute: NCCL_P2P_USE_CUDA_MEMCPY=1 hung the whole 10-minute call on 2026-11-30.
  env "$@" timeout 60 "$BIN/embedserve" bench --model-path $MODEL --device cuda --tp $tp --seq-len 2048 \
    --max-num-batched-tokens 2048 --seconds 3 > "$OUT/probe_$name.log" 2>&1 || status=1
  awk -v n="$name" '$1 == 2048 && NF == 8 { printf "%-44s %7.2f ms\n", n, 1000 * $4 / $3 }' "$OUT/probe_$name.log"
}
step "one 2,048-token input, 8B bf16"
latency tp1 1
latency tp2_peer_bf16 2
latency tp2_peer_f32 2 EMBEDSERVE_TP_REDUCE=f32
nccl() { latency "$1" 2 EMBEDSERVE_TP_SUM=nccl "${@:2}"; }
nccl tp2_nccl_whole EMBEDSERVE_TP_OVERLAP_TOKENS=0 EMBEDSERVE_TP_REDUCE=f32
nccl tp2_nccl_whole_bf16 EMBEDSERVE_TP_OVERLAP_TOKENS=0
nccl tp2_nccl_halves EMBEDSERVE_TP_OVERLAP_TOKENS=512
nccl tp2_nccl_gemm_pieces2 EMBEDSERVE_TP_GEMM_CHUNKS=2
nccl tp2_nccl_gemm_pieces4 EMBEDSERVE_TP_GEMM_CHUNKS=4
nccl tp2_nccl_whole_32ch EMBEDSERVE_TP_OVERLAP_TOKENS=0 NCCL_MIN_NCHANNELS=32
nccl tp2_nccl_whole_simple EMBEDSERVE_TP_OVERLAP_TOKENS=0 NCCL_PROTO=Simple
nccl tp2_nccl_whole_ll128 EMBEDSERVE_TP_OVERLAP_TOKENS=0 NCCL_PROTO=LL128
if command -v nsys > /dev/null; then
  for mode in peer nccl; do
    step "nsys: GPU time per kernel, --tp 2 ($mode)"
    EMBEDSERVE_TP_SUM=$mode timeout 120 nsys profile -o /tmp/tp_$mode --force-overwrite true -t cuda \
      "$BIN/embedserve" bench --model-path $MODEL --device cuda --tp 2 --seq-len 2048 --max-num-batched-tokens 2048 \
      --seconds 1 > /dev/null 2>&1
    nsys stats -q -r cuda_gpu_kern_sum -f csv /tmp/tp_$mode.nsys-rep 2>/dev/null | python3 -c '
import csv, sys
rows = list(csv.DictReader(sys.stdin))
total = sum(float(r["Total Time (ns)"]) for r in rows)
print(f"all kernels {total / 1e6:.1f} ms GPU time (both GPUs, whole run)")
for r in rows[:12]:
    print(f"{float(r[\"Time (%)\"]):5.1f}% {float(r[\"Total Time (ns)\"]) / 1e6:9.1f} ms {int(r[\"Instances\"]):7d}x  {r[\"Name\"][:90]}")
' | tee -a "$OUT/nsys_$mode.txt"
  done
else
  echo "no nsys on this machine"
fi
exit $status
