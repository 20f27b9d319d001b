#!/usr/bin/env python3
"""Cold start: seconds from launching `embedserve serve` to its first `/health` 200, with the checkpoint in the page
cache (the first run reads it from disk and is reported apart). Several binaries alternate, so a change is measured
against the one before it on the same machine in the same minute.

    python3 bench/server/cold_start.py --model /tmp/qwen3-4b-random --bin old=.carry/embedserve_base \
        --bin new=build/embedserve --runs 4 [--device cuda] [--timeline]

`--timeline` also prints, for each binary's last start, every line the server wrote to stderr with the time it
arrived (seconds since launch) and when /health first answered 200: where a start goes outside the server's own
account of its engine (process start, listening, what follows the load).
"""
import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_start(binary, model, device, timeout, phases=None, timeline=None):
    """Seconds to the first /health 200; with `phases` (a list), appends the server's own start-up line; with
    `timeline` (a list), fills it with (seconds since launch, stderr line) as the lines arrive, and the 200."""
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([binary, "serve", "--model-path", model, "--port", str(port), "--device", device],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = []  # (arrival, line), appended by the reader: stderr is read as it comes, so each line has its time

    def read_stderr():
        for line in proc.stderr:
            lines.append((time.perf_counter() - t0, line.rstrip("\n")))
    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}/health"
    try:
        while time.perf_counter() - t0 < timeout:
            if proc.poll() is not None:
                reader.join(timeout=5)
                raise RuntimeError(f"{binary} exited with {proc.returncode}: "
                                   + "\n".join(line for _, line in lines)[-2000:])
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        ready = time.perf_counter() - t0
                        if timeline is not None:
                            timeline.append((ready, "(the first /health 200)"))
                        return ready
            except OSError:
                pass
            time.sleep(0.005)
        raise RuntimeError(f"{binary}: no /health 200 within {timeout} s")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
        if phases is not None:
            phases.extend(line for _, line in lines if "start-up:" in line)
        if timeline is not None:
            timeline.extend(lines)
            timeline.sort(key=lambda entry: entry[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--bin", action="append", required=True, help="NAME=PATH; repeat to compare binaries")
    ap.add_argument("--runs", type=int, default=3, help="page-cached starts per binary (after one warming start)")
    ap.add_argument("--device", default="auto", help="serve's --device (default: auto, what serve runs without the flag)")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--timeline", action="store_true",
                    help="print each binary's last start as its stderr lines with their arrival times")
    args = ap.parse_args()
    bins = [b.split("=", 1) for b in args.bin]
    for name, path in bins:  # the first start of each reads the files into the page cache
        print(f"{name}: warming start {one_start(path, args.model, args.device, args.timeout):.2f} s", flush=True)
    times = {name: [] for name, _ in bins}
    phases = {name: [] for name, _ in bins}
    timelines = {name: [] for name, _ in bins}
    for run in range(args.runs):
        for name, path in bins:
            timeline = [] if args.timeline and run == args.runs - 1 else None
            times[name].append(one_start(path, args.model, args.device, args.timeout, phases[name], timeline))
            timelines[name] = timeline or []
    model = os.path.basename(os.path.normpath(args.model))
    for name, _ in bins:
        t = times[name]
        print(f"cold start {name} on {model}: median {statistics.median(t):.2f} s "
              f"(min {min(t):.2f}, max {max(t):.2f}, {len(t)} runs)")
        for line in phases[name]:  # the server's own account of each start (binaries that print one)
            print(f"  {name}: {line.split('start-up: ', 1)[1]}")
        polls = [arrival for arrival, line in timelines[name] if "GET /health 503" in line]
        if polls:  # the access log's line for each of the tool's polls while loading: one summary line
            print(f"  {name} {polls[0]:6.3f} s  /health answered 503 (loading) to {len(polls)} polls, the last at "
                  f"{polls[-1]:.3f} s")
        for arrival, line in timelines[name]:
            if "GET /health 503" not in line:
                print(f"  {name} {arrival:6.3f} s  {line[:160]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
