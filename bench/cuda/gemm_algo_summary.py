#!/usr/bin/env python3
"""One line per (shape, rows) of a gemm_algo_bench log: the engine's cublasGemmEx, cuBLASLt's heuristic #1 and the
fastest algorithm without a workspace, whether any of them gives other bits, our own kernels' bits and times, and
the configurations.
  python3 bench/cuda/gemm_algo_summary.py gemm_algos.log"""
import re
import sys


def summary(c):
    rows = [r for r in c["rows"] if r["workspace"] == 0]
    if not rows:
        return f"{c['name']:13s} m {c['m']:5d}: no algorithm without a workspace"
    first = next((r for r in rows if r["rank"] == 1), rows[0])
    best = min(rows, key=lambda r: r["us"])
    differ = sum(1 for r in rows if r["bits"] != "same")
    ours = "".join(f" | {name}: {bits}" + (f" {us:.1f} us" if us else "") for name, bits, us in c["ours"])
    return (f"{c['name']:13s} m {c['m']:5d}: GemmEx {c['ex']:8.2f} us ({c['ex_bits']}), #1 {first['us']:8.2f}, "
            f"best {best['us']:8.2f} (#{best['rank']}, {c['ex'] / best['us']:.2f}x), other bits {differ}/{len(rows)}"
            f"{ours} | best: {best['config']} | #1: {first['config']}")


def main(path):
    cur = None
    for line in open(path):
        m = re.match(r"(\S+ \S+)\s+n\s+(\d+) k\s+(\d+) m\s+(\d+): cublasGemmEx\s+([\d.]+) us.*bits (\S+)", line)
        if m:
            if cur:
                print(summary(cur))
            cur = dict(name=m[1], m=int(m[4]), ex=float(m[5]), ex_bits=m[6], rows=[], ours=[])
            continue
        o = re.match(r"\s+ours, (\S+) \S+: +(?:([\d.]+) us\s+bits (\S+)|not run)", line)
        if o and cur:
            cur["ours"].append((o[1], o[3] or "not run", float(o[2]) if o[2] else None))
            continue
        r = re.match(r"\s+([\d.]+) us.*bits (\S+)\s+heuristic #(\d+), workspace (\d+): (.*)", line)
        if r and cur:
            cur["rows"].append(dict(us=float(r[1]), bits=r[2], rank=int(r[3]), workspace=int(r[4]), config=r[5]))
    if cur:
        print(summary(cur))


if __name__ == "__main__":
    main(sys.argv[1])
