"""Sums ncu's per-launch GPU times (`ncu --metrics gpu__time_duration.sum --csv`, on stdin) by kernel and prints the
kernels that take the most: share of the total, launches, mean time, name."""
import collections
import csv
import sys

rows = [r for r in csv.reader(sys.stdin) if len(r) > 10]
head, body = rows[0], rows[1:]
name_i, metric_i, unit_i, value_i = (head.index(k) for k in ("Kernel Name", "Metric Name", "Metric Unit", "Metric Value"))
to_us = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3}
time = collections.defaultdict(float)
calls = collections.Counter()
for r in body:
    if r[metric_i] != "gpu__time_duration.sum":
        continue
    time[r[name_i]] += float(r[value_i].replace(",", "")) * to_us[r[unit_i]]
    calls[r[name_i]] += 1
total = sum(time.values())
for name, us in sorted(time.items(), key=lambda kv: -kv[1])[: int(sys.argv[1]) if len(sys.argv) > 1 else 14]:
    print(f"{100 * us / total:5.1f}%  {calls[name]:6d}  {us / calls[name]:9.1f} us  {name[:110]}")
print(f"total GPU time {total / 1e3:.2f} ms over {sum(calls.values())} launches")
