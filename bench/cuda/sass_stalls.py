#!/usr/bin/env python3
"""Where a kernel's warps wait, from ncu's SASS table (ncu -i REP --page source --csv --print-source sass): the
share of stall samples per reason, per region (before the first HGMMA, the loop, after the last), and per line; then
the executed instructions by opcode, which tells a kernel bound by issuing them (the wgmma attention kernel before
2026-12-02's cf6db45: ~1,236 a warp per key tile where its softmax needs ~320) from one waiting on its products.

  python3 bench/cuda/sass_stalls.py att_512_sass.csv [--top 25]
"""
import argparse
import collections
import csv


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("table")
    ap.add_argument("--top", type=int, default=25, help="lines with the most samples to list")
    args = ap.parse_args()
    rows = list(csv.reader(open(args.table)))
    header = next(r for r in rows if "Source" in r and "Address" in r)
    data = [r for r in rows[rows.index(header) + 1:] if len(r) >= len(header)]
    samples_col, source_col = header.index("Warp Stall Sampling (All Samples)"), header.index("Source")
    reasons = [i for i, h in enumerate(header) if h.startswith("stall_") and "Not Issued" not in h]
    count = lambda v: int(v.replace(",", "") or 0)
    samples = [count(r[samples_col]) for r in data]
    total = sum(samples) or 1
    by_reason = collections.Counter()
    for r in data:
        for i in reasons:
            by_reason[header[i][len("stall_"):]] += count(r[i])
    reason_total = sum(by_reason.values()) or 1
    print(f"{total} samples; by reason:")
    for name, n in by_reason.most_common(10):
        print(f"  {name:20s} {n / reason_total * 100:5.1f} %")
    mma = [i for i, r in enumerate(data) if "HGMMA" in r[source_col]]
    if mma:
        # The loop ends at the wait for the last product.
        waits = [i for i, r in enumerate(data) if "DEPBAR" in r[source_col] and i > mma[-1]]
        end = waits[0] if waits else mma[-1]
        share = lambda a, b: sum(samples[a:b]) / total * 100
        print(f"before the first HGMMA {share(0, mma[0]):.1f} %, loop {share(mma[0], end + 1):.1f} %, "
              f"after it {share(end + 1, len(data)):.1f} %")
    print("lines with the most samples:")
    for i in sorted(range(len(data)), key=lambda i: -samples[i])[:args.top]:
        top = max(reasons, key=lambda c: count(data[i][c]))
        print(f"  {samples[i] / total * 100:5.2f} %  {header[top][len('stall_'):]:14s} {data[i][source_col].strip()[:80]}")
    if "Instructions Executed" in header:
        executed_col = header.index("Instructions Executed")
        by_opcode = collections.Counter()
        for r in data:
            words = r[source_col].split()
            if words and words[0].startswith("@"):  # a predicate guards the instruction
                words = words[1:]
            if words:
                by_opcode[words[0].split(".")[0]] += count(r[executed_col])
        executed = sum(by_opcode.values()) or 1
        print(f"{executed:,} instructions executed (warp-level); by opcode:")
        for opcode, n in by_opcode.most_common(args.top):
            print(f"  {opcode:12s} {n / executed * 100:5.1f} %")


if __name__ == "__main__":
    main()
