#!/usr/bin/env python3
"""Peak resident memory of `embedserve serve` at its defaults: the start-up line, then VmHWM after a full-budget
batch and after one long (chunked) input. Issue 15's memory goal: the 4B within 9 GB, the 8B within 17 GB.

    python3 bench/engine/serve_memory.py --embedserve build/embedserve --model /tmp/qwen3-4b-random \\
        --long-tokens 4096 [-- extra serve flags]

serve needs tokenizer.json beside the weights (copy tests/data/qwen3-tokenizer/* into a random checkpoint).
Random ids within the smallest vocabulary (151,665 rows). One server at a time: the 8B alone needs 16 GB.
"""

import argparse
import http.client
import json
import random
import re
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise SystemExit(f"no {key} in /proc/{pid}/status")


def post(port, inputs, timeout):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("POST", "/v1/embeddings", json.dumps({"model": "m", "input": inputs}),
              {"Content-Type": "application/json"})
    r = c.getresponse()
    body = r.read()
    if r.status != 200:
        raise SystemExit(f"POST /v1/embeddings: {r.status} {body[:500]!r}")
    return json.loads(body)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embedserve", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--long-tokens", type=int, default=20000, help="the long input's length (0: none)")
    ap.add_argument("--batch-input-tokens", type=int, default=32, help="length of the inputs filling one batch")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("serve_flags", nargs="*", help="after --: more serve flags (default: none, the defaults)")
    a = ap.parse_args()

    port = free_port()
    # No request deadline: a long input on a loaded CPU may take longer than serve's default 300 s.
    cmd = [a.embedserve, "serve", "--model-path", a.model, "--device", "cpu", "--port", str(port),
           "--request-timeout", "0", *a.serve_flags]
    print("$ " + " ".join(cmd), flush=True)
    log = open(f"/tmp/serve_memory_{port}.log", "w+")
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        ready = None
        for _ in range(int(a.timeout * 10)):
            if p.poll() is not None:
                log.seek(0)
                raise SystemExit(f"serve exited {p.returncode}:\n{log.read()[-3000:]}")
            log.seek(0)
            ready = next((l for l in log.read().splitlines() if "ready in" in l), None)
            if ready:
                break
            time.sleep(0.1)
        print(ready, flush=True)
        budget = int(re.search(r"batch budget (\d+) tokens", ready).group(1))
        print(f"after load: VmRSS {status_kb(p.pid, 'VmRSS') / 2**20:.2f} GiB, VmHWM "
              f"{status_kb(p.pid, 'VmHWM') / 2**20:.2f} GiB", flush=True)
        rng = random.Random(0)
        n = a.batch_input_tokens
        batch = [[rng.randrange(10, 151000) for _ in range(n)] for _ in range(max(1, budget // n))]
        t = time.time()
        post(port, batch, a.timeout)
        print(f"after a full batch ({len(batch)} inputs of {n} tokens, {time.time() - t:.1f} s): VmHWM "
              f"{status_kb(p.pid, 'VmHWM') / 2**20:.2f} GiB ({status_kb(p.pid, 'VmHWM') / 1e6:.2f} GB)", flush=True)
        if a.long_tokens:
            t = time.time()
            post(port, [[rng.randrange(10, 151000) for _ in range(a.long_tokens)]], a.timeout)
            print(f"after one {a.long_tokens}-token input ({time.time() - t:.1f} s): VmHWM "
                  f"{status_kb(p.pid, 'VmHWM') / 2**20:.2f} GiB ({status_kb(p.pid, 'VmHWM') / 1e6:.2f} GB), "
                  f"VmRSS now {status_kb(p.pid, 'VmRSS') / 2**20:.2f} GiB", flush=True)
    finally:
        p.terminate()
        p.wait(30)


if __name__ == "__main__":
    sys.exit(main())
