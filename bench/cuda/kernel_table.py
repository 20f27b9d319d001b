"""Sums ncu's per-launch GPU times (`ncu --metrics gpu__time_duration.sum --csv`, on stdin) by kernel and prints the
kernels that take the most: share of the total, launches, mean time, name; then the same by kind of kernel (cuBLAS
GEMMs, attention, the element-wise passes, ...).
  --last-batch: only the launches from the last embedding lookup on, i.e. the last batch alone (without the first
                batch's GEMM tuning runs); --wall-ms: that batch's wall time in a steady run outside ncu. The
                difference is time outside kernels (launch gaps, host work) or kernels running slower in the steady
                run than under ncu, whose one-at-a-time launches keep the card off its power cap: on an H200 at
                bulk batches mostly the latter (docs/PERFORMANCE.md, 2026-12-01)."""
import argparse
import collections
import csv
import sys

parser = argparse.ArgumentParser()
parser.add_argument("top", nargs="?", type=int, default=14)
parser.add_argument("--last-batch", action="store_true")
parser.add_argument("--wall-ms", type=float, default=0.0)
args = parser.parse_args()

rows = [r for r in csv.reader(sys.stdin) if len(r) > 10]
head, body = rows[0], rows[1:]
name_i, metric_i, unit_i, value_i = (head.index(k) for k in ("Kernel Name", "Metric Name", "Metric Unit", "Metric Value"))
to_us = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}
launches = [(r[name_i], float(r[value_i].replace(",", "")) * to_us[r[unit_i]])
            for r in body if r[metric_i] == "gpu__time_duration.sum"]
if args.last_batch:
    starts = [i for i, (name, _) in enumerate(launches) if "embedding_kernel" in name]
    if starts:
        launches = launches[starts[-1]:]
time = collections.defaultdict(float)
calls = collections.Counter()
for name, us in launches:
    time[name] += us
    calls[name] += 1
total = sum(time.values())
for name, us in sorted(time.items(), key=lambda kv: -kv[1])[: args.top]:
    print(f"{100 * us / total:5.1f}%  {calls[name]:6d}  {us / calls[name]:9.1f} us  {name[:110]}")
print(f"total GPU time {total / 1e3:.2f} ms over {sum(calls.values())} launches")

KINDS = [  # first match wins; cuBLAS's kernels are named after their tiles (sm90_xmma_gemm_..., nvjet_...)
    ("gemm (ours)", ("wgmma_gemm",)),
    ("gemm (cuBLAS)", ("gemm", "nvjet", "cutlass", "xmma")),
    ("attention", ("attention",)),
    ("q/k norm + RoPE", ("qk_norm_rope",)),
    ("add + norm", ("add_rms_norm", "rms_norm")),
    ("SwiGLU", ("silu_mul",)),
    ("embedding / pooling", ("embedding_kernel", "gather_kernel", "pool_kernel")),
    ("FP8 quantise / scale", ("quantize_rows", "scale_kernel")),
]
kinds = collections.defaultdict(float)
for name, us in time.items():
    kinds[next((k for k, keys in KINDS if any(key in name.lower() for key in keys)), "other")] += us
for kind, us in sorted(kinds.items(), key=lambda kv: -kv[1]):
    print(f"  {kind:22s} {100 * us / total:5.1f} %  {us / 1e3:8.2f} ms")
if args.wall_ms:
    print(f"  {'wall time - kernels':22s} {args.wall_ms - total / 1e3:8.2f} ms of the {args.wall_ms:.2f} ms batch "
          f"({100 * (1 - total / 1e3 / args.wall_ms):.1f} %: time outside kernels, or slower clocks in the steady run)")
