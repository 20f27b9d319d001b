#!/usr/bin/env python3
"""What the engine did between two /metrics snapshots: calls, sequences and tokens per call, time per call.

    curl -s http://127.0.0.1:30000/metrics > before.txt; <run a workload>; curl -s .../metrics > after.txt
    python3 bench/server/batch_stats.py before.txt after.txt [load.json]

Prints one line (after the load tool's figures when its JSON line, from bench/server/load/embedserve_http_load or
bench/server/http_load.py, is given): the engine calls made in between, their mean sequences and tokens, the mean time of a call (the
scheduler's `embedserve_compute_seconds`: the engine's validation and run of one batch) and the engine's total
time, and the mean time a request's inputs waited for the engine. It tells a workload bound by the engine (calls
back to back, their total near the run's length) from one bound elsewhere (the server's threads, the client).
"""
import json
import sys


def read_metrics(path):
    """Every `embedserve_*` sample of a Prometheus text page, by its full name with labels."""
    values = {}
    with open(path) as f:
        for line in f:
            if line.startswith("embedserve_") and " " in line:
                name, value = line.rsplit(" ", 1)
                values[name] = float(value)
    return values


def batch_line(before, after):
    d = lambda name: after.get(name, 0.0) - before.get(name, 0.0)
    calls = d("embedserve_batch_sequences_count")
    if calls <= 0:
        return "engine calls 0"
    compute = d("embedserve_compute_seconds_sum")
    waits = max(d("embedserve_queue_seconds_count"), 1)
    return (f"engine calls {calls:.0f}: {d('embedserve_batch_sequences_sum') / calls:.1f} sequences and "
            f"{d('embedserve_batch_tokens_sum') / calls:.0f} tokens each, {1e3 * compute / calls:.2f} ms per call "
            f"({compute:.2f} s of engine time); queue wait {1e3 * d('embedserve_queue_seconds_sum') / waits:.2f} ms mean")


def load_line(path):
    """The load tool's JSON line as requests/s, tokens/s, p50, p99 and errors."""
    with open(path) as f:
        text = f.readline().strip()
    if not text:
        return "no result from the load tool"
    r = json.loads(text)
    return (f"{r['requests_per_s']:,.0f} req/s, {r['tokens_per_s'] or 0:,.0f} tok/s, p50 {r['p50_ms']:.3f} ms, "
            f"p99 {r['p99_ms']:.3f} ms, {r['errors']} errors")


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: batch_stats.py METRICS_BEFORE METRICS_AFTER [LOAD_JSON]")
    line = batch_line(read_metrics(sys.argv[1]), read_metrics(sys.argv[2]))
    print(f"{load_line(sys.argv[3])} | {line}" if len(sys.argv) == 4 else line)


if __name__ == "__main__":
    main()
