#!/usr/bin/env python3
"""Batch API against /v1/embeddings on the same texts, against a running `embedserve serve --data-dir DIR`:

  route    the texts through POST /v1/embeddings, `--per-request` (64) texts per request, `--concurrency` in flight:
           tokens/s from the answers' usage, wall clock.
  batch    the same texts as a `--lines`-line batch job (one text per line): uploaded (not timed), then timed from
           POST /v1/batches to status completed; tokens/s from the output file's usage (downloaded, not timed).
  ratio    batch tokens/s ÷ route tokens/s (issue 12 asks ≥ 0.95); with --repeat N the two alternate N times and
           the summary compares each side's best.
  latency  with --latency-seconds S: p50/p99 of 16-token queries (one per request, `--query-connections` closed-loop
           clients) for S seconds on the idle server, then for S seconds while another batch job of the same texts
           runs; the p99 ratio (issue 12 asks ≤ 2).

    python3 bench/server/batch_throughput.py --url http://127.0.0.1:30000 --lines 100000 --latency-seconds 20

Texts are 16–512 tokens (bench/server/http_load.py's generator, fixed seed). Every answer is checked. aiohttp only.
"""
import argparse
import asyncio
import base64
import json
import pathlib
import random
import statistics
import sys
import time

import aiohttp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from http_load import WORDS, bulk_texts, post  # noqa: E402


async def route_run(session, args, texts):
    chunks = [texts[i:i + args.per_request] for i in range(0, len(texts), args.per_request)]
    queue = asyncio.Queue()
    for c in chunks:
        queue.put_nowait(c)
    tokens = 0

    async def worker():
        nonlocal tokens
        while not queue.empty():
            n = await post(session, args.url, args.model, queue.get_nowait())  # not `tokens += await`: that
            tokens += n  # reads `tokens` before the await and loses the other workers' additions

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    return tokens, time.perf_counter() - t0


def batch_file(texts, model):
    return "".join(json.dumps({"custom_id": f"t{i}", "method": "POST", "url": "/v1/embeddings",
                               "body": {"model": model, "input": t, "encoding_format": "base64"}}) + "\n"
                   for i, t in enumerate(texts)).encode()


async def upload(session, url, content):
    form = aiohttp.FormData()
    form.add_field("purpose", "batch")
    form.add_field("file", content, filename="bench.jsonl", content_type="application/jsonl")
    async with session.post(url + "/v1/files", data=form) as r:
        body = await r.json()
        if r.status != 200:
            raise RuntimeError(f"upload: HTTP {r.status}: {body}")
        return body["id"]


async def start_batch(session, url, file_id):
    payload = {"input_file_id": file_id, "endpoint": "/v1/embeddings", "completion_window": "24h"}
    async with session.post(url + "/v1/batches", json=payload) as r:
        body = await r.json()
        if r.status != 200:
            raise RuntimeError(f"create: HTTP {r.status}: {body}")
        return body["id"]


async def wait_batch(session, url, batch_id):
    while True:
        async with session.get(f"{url}/v1/batches/{batch_id}") as r:
            b = await r.json()
        if b["status"] in ("completed", "failed", "cancelled", "expired"):
            return b
        await asyncio.sleep(0.1)


async def output_tokens(session, url, b, n_lines, hidden_check=True):
    if b["status"] != "completed" or b["request_counts"]["failed"]:
        raise RuntimeError(f"the batch did not complete cleanly: {b}")
    tokens, lines = 0, 0
    async with session.get(f"{url}/v1/files/{b['output_file_id']}/content") as r:
        async for line in r.content:
            rec = json.loads(line)
            body = rec["response"]["body"]
            if rec["response"]["status_code"] != 200 or not base64.b64decode(body["data"][0]["embedding"]):
                raise RuntimeError(f"a bad output line: {line[:200]!r}")
            tokens += body["usage"]["prompt_tokens"]
            lines += 1
    if lines != n_lines:
        raise RuntimeError(f"{lines} output lines for {n_lines} requests")
    return tokens


async def query_latencies(session, args, seconds, seed):
    rng = random.Random(seed)
    latencies = []
    stop = time.perf_counter() + seconds

    async def client():
        while time.perf_counter() < stop:
            text = " ".join(rng.choice(WORDS) for _ in range(15))  # + the end token: 16 tokens
            t0 = time.perf_counter()
            await post(session, args.url, args.model, text)
            latencies.append(time.perf_counter() - t0)

    await asyncio.gather(*(client() for _ in range(args.query_connections)))
    latencies.sort()
    return latencies


def pct(sorted_values, p):
    return sorted_values[min(len(sorted_values) - 1, int(p / 100 * len(sorted_values)))]


async def main_async(args):
    texts = bulk_texts(args.lines, args.seed)
    timeout = aiohttp.ClientTimeout(total=None)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
        content = batch_file(texts, args.model)
        t0 = time.perf_counter()
        file_id = await upload(session, args.url, content)
        upload_s = time.perf_counter() - t0
        best_route = best_batch = 0.0
        # Route and batch alternate, --repeat times: on a shared machine the load drifts, and pairs measured
        # back to back compare like with like; the summary takes each side's best.
        for rep in range(args.repeat):
            route_tokens, route_s = await route_run(session, args, texts)
            route_tps = route_tokens / route_s
            t0 = time.perf_counter()
            batch_id = await start_batch(session, args.url, file_id)
            b = await wait_batch(session, args.url, batch_id)
            batch_s = time.perf_counter() - t0
            batch_tokens = await output_tokens(session, args.url, b, len(texts))
            if batch_tokens != route_tokens:
                raise RuntimeError(f"the batch counted {batch_tokens} tokens, the route {route_tokens}")
            batch_tps = batch_tokens / batch_s
            best_route, best_batch = max(best_route, route_tps), max(best_batch, batch_tps)
            print(json.dumps({"run": rep + 1, "tokens": route_tokens,
                              "route": {"seconds": round(route_s, 2), "tokens_per_s": round(route_tps)},
                              "batch": {"seconds": round(batch_s, 2), "tokens_per_s": round(batch_tps)},
                              "ratio": round(batch_tps / route_tps, 3)}), flush=True)
        if args.repeat:  # --repeat 0: the latency measurement alone
            print(json.dumps({"lines": len(texts), "file_bytes": len(content), "upload_seconds": round(upload_s, 2),
                              "best_route_tokens_per_s": round(best_route),
                              "best_batch_tokens_per_s": round(best_batch),
                              "ratio_of_bests": round(best_batch / best_route, 3)}), flush=True)
        if args.latency_seconds:
            idle = await query_latencies(session, args, args.latency_seconds, args.seed)
            busy_id = await start_batch(session, args.url, file_id)
            busy = await query_latencies(session, args, args.latency_seconds, args.seed + 1)
            async with session.get(f"{args.url}/v1/batches/{busy_id}") as r:
                progress = (await r.json())["request_counts"]
            async with session.post(f"{args.url}/v1/batches/{busy_id}/cancel") as r:
                await r.read()
            print(json.dumps({"latency": {
                "idle": {"queries": len(idle), "p50_ms": round(pct(idle, 50) * 1e3, 2),
                         "p99_ms": round(pct(idle, 99) * 1e3, 2)},
                "during_batch": {"queries": len(busy), "p50_ms": round(pct(busy, 50) * 1e3, 2),
                                 "p99_ms": round(pct(busy, 99) * 1e3, 2), "batch_progress": progress},
                "p99_ratio": round(pct(busy, 99) / pct(idle, 99), 2)}}), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:30000")
    ap.add_argument("--model", default="embedserve", help="the request's model name (one model served: any name)")
    ap.add_argument("--lines", type=int, default=100000)
    ap.add_argument("--per-request", type=int, default=64)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1, help="route/batch pairs to run (the summary takes the best)")
    ap.add_argument("--latency-seconds", type=float, default=0)
    ap.add_argument("--query-connections", type=int, default=4)
    args = ap.parse_args(argv)
    args.url = args.url.rstrip("/")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
