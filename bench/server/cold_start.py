#!/usr/bin/env python3
"""Cold start: seconds from launching `embedserve serve` to its first `/health` 200, with the checkpoint in the page
cache (the first run reads it from disk and is reported apart). Several binaries alternate, so a change is measured
against the one before it on the same machine in the same minute.

    python3 bench/server/cold_start.py --model /tmp/qwen3-4b-random --bin old=.carry/embedserve_base \
        --bin new=build/embedserve --runs 4 [--device cuda]
"""
import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_start(binary, model, device, timeout, phases=None):
    """Seconds to the first /health 200; with `phases` (a list), appends the server's own start-up line."""
    port = free_port()
    t0 = time.perf_counter()
    proc = subprocess.Popen([binary, "serve", "--model-path", model, "--port", str(port), "--device", device],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/health"
    try:
        while time.perf_counter() - t0 < timeout:
            if proc.poll() is not None:
                raise RuntimeError(f"{binary} exited with {proc.returncode}: {proc.stderr.read()[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - t0
            except OSError:
                pass
            time.sleep(0.005)
        raise RuntimeError(f"{binary}: no /health 200 within {timeout} s")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            err = ""
        if phases is not None:
            phases.extend(line for line in err.splitlines() if "start-up:" in line)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True)
    ap.add_argument("--bin", action="append", required=True, help="NAME=PATH; repeat to compare binaries")
    ap.add_argument("--runs", type=int, default=3, help="page-cached starts per binary (after one warming start)")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args()
    bins = [b.split("=", 1) for b in args.bin]
    for name, path in bins:  # the first start of each reads the files into the page cache
        print(f"{name}: warming start {one_start(path, args.model, args.device, args.timeout):.2f} s", flush=True)
    times = {name: [] for name, _ in bins}
    phases = {name: [] for name, _ in bins}
    for _ in range(args.runs):
        for name, path in bins:
            times[name].append(one_start(path, args.model, args.device, args.timeout, phases[name]))
    model = os.path.basename(os.path.normpath(args.model))
    for name, _ in bins:
        t = times[name]
        print(f"cold start {name} on {model}: median {statistics.median(t):.2f} s "
              f"(min {min(t):.2f}, max {max(t):.2f}, {len(t)} runs)")
        for line in phases[name]:  # the server's own account of each start (binaries that print one)
            print(f"  {name}: {line.split('start-up: ', 1)[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
