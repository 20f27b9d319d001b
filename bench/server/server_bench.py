"""What the HTTP server costs on top of the engine: embeddings/s through HTTP vs in-process, single-query latency
at concurrency 1/16/64, and float vs base64 serialisation on a wide (hidden 1024) model. Prints a Markdown report.

    python3 bench/server/server_bench.py [--bin build/embedserve] [--seconds 15]
"""
from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))
from server_process import ServerProcess, find_binary, make_model  # noqa: E402
from wrk_load import run_wrk  # noqa: E402

QUERY = "what is the capital of France?"
WIDE_MODEL = dict(hidden=1024, layers=1, heads=8, kv_heads=4, head_dim=128, intermediate=256)


def batch_texts(n: int) -> list[str]:
    return [f"short document number {i} about rivers and stones" for i in range(n)]


def cpu_name() -> str:
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def wrk_row(srv, name: str, body: dict, inputs_per_request: int, connections: int, seconds: int) -> dict:
    r = run_wrk(srv.base_url, [("/v1/embeddings", body)], seconds=seconds, connections=connections)
    assert r["non2xx"] == 0 and r["requests"] == r["ok"], r["wrk_output"]
    secs = r["duration_us"] / 1e6
    row = {"scenario": name, "connections": connections, "req_s": r["requests"] / secs,
           "emb_s": r["requests"] * inputs_per_request / secs,
           "p50_ms": r["latency_us"]["p50"] / 1e3, "p99_ms": r["latency_us"]["p99"] / 1e3}
    print(f"  {name:44s} c={connections:3d}: {row['req_s']:9.0f} req/s {row['emb_s']:10.0f} emb/s "
          f"p50 {row['p50_ms']:7.2f} ms p99 {row['p99_ms']:7.2f} ms", flush=True)
    return row


def in_process(binary, model_dir, batch: int) -> str:
    """Runs `embedserve bench` (the engine without HTTP) on the same model; returns its output, or why not."""
    cmd = [str(binary), "bench", "--model-path", str(model_dir), "--device", "cpu", "--batch", str(batch)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        return f"`{' '.join(cmd[1:])}` failed ({proc.returncode}): {proc.stderr.strip()[:300]}"
    return proc.stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=None, help="embedserve binary (default $EMBEDSERVE_BIN or build/embedserve)")
    ap.add_argument("--seconds", type=int, default=15, help="duration of each wrk run")
    ap.add_argument("--server-args", default="", help="extra flags for embedserve serve, space-separated")
    args = ap.parse_args()
    if args.bin:
        os.environ["EMBEDSERVE_BIN"] = args.bin
    binary = find_binary()
    extra = args.server_args.split()
    work = pathlib.Path(tempfile.mkdtemp(prefix="server-bench-"))
    tiny = make_model(work / "tiny-qwen3-embedding", seed=1)
    wide = make_model(work / "wide-qwen3-embedding", seed=2, **WIDE_MODEL)
    rows = []

    print(f"tiny model (hidden 32, 2 layers), {args.seconds} s per run", flush=True)
    srv = ServerProcess(binary, tiny, *extra).start()
    try:
        single = {"model": tiny.name, "input": QUERY, "encoding_format": "float"}
        for c in (1, 16, 64):
            rows.append(wrk_row(srv, "one short query (float)", single, 1, c, args.seconds))
        for n in (64, 512):
            body = {"model": tiny.name, "input": batch_texts(n), "encoding_format": "base64"}
            rows.append(wrk_row(srv, f"{n} short texts per request (base64)", body, n, 16, args.seconds))
    finally:
        tiny_rc = srv.stop()
    print("in-process (embedserve bench) on the same model:", flush=True)
    inproc = in_process(binary, tiny, 512)
    print(inproc, flush=True)

    print("wide model (hidden 1024, 1 layer): float JSON vs base64", flush=True)
    srv = ServerProcess(binary, wide, *extra).start()
    try:
        for fmt in ("float", "base64"):
            body = {"model": wide.name, "input": batch_texts(64), "encoding_format": fmt}
            rows.append(wrk_row(srv, f"wide: 64 texts per request ({fmt})", body, 64, 16, args.seconds))
        sizes = []
        for fmt in ("float", "base64"):
            status, _, raw = srv.request("POST", "/v1/embeddings", {**body, "encoding_format": fmt})
            assert status == 200, raw[:200]
            sizes.append(len(raw))
    finally:
        wide_rc = srv.stop()

    shutil.rmtree(work)
    print("\n## Markdown\n")
    print(f"Measured {datetime.date.today()} on {cpu_name()} ({os.cpu_count()} cores), "
          f"`{' '.join([sys.executable.split('/')[-1]] + sys.argv)}`; server exit codes {tiny_rc}/{wide_rc}.\n")
    print("| scenario | connections | requests/s | embeddings/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['scenario']} | {r['connections']} | {r['req_s']:.0f} | {r['emb_s']:.0f} | "
              f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} |")
    print(f"\nWide model response body for 64 vectors: float JSON {sizes[0]} bytes, base64 {sizes[1]} bytes.")
    print(f"\nIn-process:\n```\n{inproc}\n```")


if __name__ == "__main__":
    main()
