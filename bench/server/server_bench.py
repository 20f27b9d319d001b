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


def in_process(binary, model_dir, seq_len: int, batch_tokens: int, seconds: int, threads: int) -> dict:
    """`embedserve bench` on the same model: the engine alone, no HTTP, tokenizer or scheduler."""
    cmd = [str(binary), "bench", "--model-path", str(model_dir), "--device", "cpu", "--seq-len", str(seq_len),
           "--max-num-batched-tokens", str(batch_tokens), "--seconds", str(seconds), "--threads", str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True).stdout
    for line in out.splitlines():
        cols = line.split()
        if cols and cols[0] == str(seq_len):  # seq_len inputs batches seconds tokens/s inputs/s ...
            row = {"scenario": f"in-process `embedserve bench --seq-len {seq_len} --max-num-batched-tokens {batch_tokens}`",
                   "connections": "-", "req_s": float("nan"), "emb_s": float(cols[5]), "p50_ms": float("nan"),
                   "p99_ms": float("nan")}
            print(f"  {row['scenario']:44s}: {row['emb_s']:10.0f} emb/s", flush=True)
            return row
    raise RuntimeError(f"no result row in:\n{out}")


def id_inputs(n: int, length: int) -> list[list[int]]:
    """n inputs of `length` token ids each (ordinary vocabulary ids, no tokenizer involved)."""
    return [[1000 + (7 * i + k) % 50000 for k in range(length)] for i in range(n)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=None, help="embedserve binary (default $EMBEDSERVE_BIN or build/embedserve)")
    ap.add_argument("--seconds", type=int, default=15, help="duration of each wrk run")
    ap.add_argument("--threads", type=int, default=1,
                    help="engine threads, the same for the server and the in-process run (0: all cores; the default "
                         "1 leaves a core to wrk on a two-core machine)")
    ap.add_argument("--server-args", default="", help="extra flags for embedserve serve, space-separated")
    args = ap.parse_args()
    if args.bin:
        os.environ["EMBEDSERVE_BIN"] = args.bin
    binary = find_binary()
    extra = ["--threads", str(args.threads), *args.server_args.split()]
    work = pathlib.Path(tempfile.mkdtemp(prefix="server-bench-"))
    tiny = make_model(work / "tiny-qwen3-embedding", seed=1)
    wide = make_model(work / "wide-qwen3-embedding", seed=2, **WIDE_MODEL)
    rows = []
    s = args.seconds

    print(f"tiny model (hidden 32, 2 layers), {s} s per run", flush=True)
    srv = ServerProcess(binary, tiny, *extra).start()
    try:
        single = {"model": tiny.name, "input": QUERY, "encoding_format": "float"}
        for c in (1, 16, 64):
            rows.append(wrk_row(srv, "one short query (float)", single, 1, c, s))
        body = {"model": tiny.name, "input": id_inputs(128, 32), "encoding_format": "base64"}
        rows.append(wrk_row(srv, "128 x 32 token ids per request (base64)", body, 128, 4, s))
        body = {"model": tiny.name, "input": batch_texts(128), "encoding_format": "base64"}
        rows.append(wrk_row(srv, "128 short texts per request (base64)", body, 128, 4, s))
    finally:
        tiny_rc = srv.stop()
    rows.append(in_process(binary, tiny, 32, 4096, s, args.threads))

    print("wide model (hidden 1024, 1 layer): float JSON vs base64", flush=True)
    srv = ServerProcess(binary, wide, *extra).start()
    try:
        for fmt in ("float", "base64"):
            body = {"model": wide.name, "input": id_inputs(256, 4), "encoding_format": fmt}
            rows.append(wrk_row(srv, f"wide: 256 x 4 token ids per request ({fmt})", body, 256, 4, s))
        sizes = []
        for fmt in ("float", "base64"):
            status, _, raw = srv.request("POST", "/v1/embeddings", {**body, "encoding_format": fmt})
            assert status == 200, raw[:200]
            sizes.append(len(raw))
    finally:
        wide_rc = srv.stop()
    rows.append(in_process(binary, wide, 4, 1024, s, args.threads))

    shutil.rmtree(work)
    print("\n## Markdown\n")
    print(f"Measured {datetime.date.today()} on {cpu_name()} ({os.cpu_count()} cores), "
          f"`{' '.join([sys.executable.split('/')[-1]] + sys.argv)}`; server exit codes {tiny_rc}/{wide_rc}.\n")
    print("| scenario | connections | requests/s | embeddings/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['scenario']} | {r['connections']} | {r['req_s']:.0f} | {r['emb_s']:.0f} | "
              f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} |".replace("nan", "-"))
    print(f"\nWide model response body for 256 vectors: float JSON {sizes[0]} bytes, base64 {sizes[1]} bytes.")


if __name__ == "__main__":
    main()
