"""Runs wrk with wrk_post.lua against a server and returns its result line as a dict (e2e load test, bench)."""
from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import tempfile

LUA = pathlib.Path(__file__).with_name("wrk_post.lua")


def run_wrk(base_url: str, requests: list[tuple[str, dict]], seconds: int, connections: int,
            threads: int = 1, timeout_s: int = 10) -> dict:
    """Drives `requests` ([(path, json body)], used in turn) for `seconds` over `connections` keep-alive
    connections; returns counts, errors and latency percentiles in microseconds."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise FileNotFoundError("wrk not found: install the Debian package wrk (scripts/setup.sh does)")
    with tempfile.NamedTemporaryFile("w", suffix=".bodies", delete=False) as f:
        for path, body in requests:
            f.write(f"{path} {json.dumps(body, ensure_ascii=False)}\n")
        bodies = f.name
    try:
        cmd = [wrk, "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", f"{timeout_s}s",
               "-s", str(LUA), base_url, "--", bodies]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
        out = proc.stdout
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    finally:
        pathlib.Path(bodies).unlink()
    for line in out.splitlines():
        if line.startswith("WRK_RESULT "):
            result = json.loads(line[len("WRK_RESULT "):])
            result["wrk_output"] = out
            return result
    raise RuntimeError(f"wrk printed no WRK_RESULT line:\n{out}")
