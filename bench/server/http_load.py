#!/usr/bin/env python3
"""The two HTTP workloads of docs/PERFORMANCE.md against a running `embedserve serve` (or any OpenAI-compatible
embedding server), so anyone can repeat them:

  bulk     N texts of 16–512 tokens (random words, fixed seed), `--per-request` texts per request, `--concurrency`
           requests in flight, sent in arrival order: tokens/s from the answers' usage.prompt_tokens, wall clock.
  queries  15-word queries, one per request, on `--connections` connections for `--seconds`: requests/s, p50/p99
           latency, errors.

    python3 bench/server/http_load.py --url http://127.0.0.1:30000 --model NAME bulk --texts 6000
    python3 bench/server/http_load.py --url http://127.0.0.1:30000 --model NAME queries --connections 128 --seconds 20

Every answer is checked (HTTP 200, one vector per input, finite values); a failure counts as an error and the run
exits 1 if there was any. aiohttp only.
"""
import argparse
import asyncio
import json
import random
import statistics
import sys
import time

import aiohttp

WORDS = ("river stone light cloud paper engine garden silver window market forest signal winter harbor letter "
         "mountain orange pocket question rhythm shadow theory valley wonder yellow anchor bridge candle dragon "
         "eleven feather glacier hammer island jungle kettle lantern meadow needle ocean planet quartz rocket").split()


def random_text(rng, words):
    return " ".join(rng.choice(WORDS) for _ in range(words))


def bulk_texts(n, seed):
    # 16–512 tokens: these words are mostly one token each with their leading space, so words ≈ tokens.
    rng = random.Random(seed)
    return [random_text(rng, rng.randint(15, 511)) for _ in range(n)]


async def post(session, url, model, inputs):
    payload = {"model": model, "input": inputs, "encoding_format": "base64"}
    async with session.post(url + "/v1/embeddings", json=payload) as r:
        body = await r.read()
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {body[:200]!r}")
        doc = json.loads(body)
        if len(doc["data"]) != (len(inputs) if isinstance(inputs, list) else 1):
            raise RuntimeError("an answer lacks vectors")
        return doc["usage"]["prompt_tokens"]


async def bulk(args):
    texts = bulk_texts(args.texts, args.seed)
    chunks = [texts[i:i + args.per_request] for i in range(0, len(texts), args.per_request)]
    tokens, errors = 0, 0
    queue = asyncio.Queue()
    for c in chunks:  # arrival order: workers take the next request as they free
        queue.put_nowait(c)
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=600)) as session:
        async def worker():
            nonlocal tokens, errors
            while not queue.empty():
                chunk = queue.get_nowait()
                try:
                    done = await post(session, args.url, args.model, chunk)
                    tokens += done  # not `tokens += await …`: that reads tokens before the await, losing others' counts
                except Exception as e:  # noqa: BLE001 — every failure is counted and reported
                    errors += 1
                    print(f"error: {e}", file=sys.stderr)
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        seconds = time.perf_counter() - t0
    print(f"bulk: {len(texts)} texts in {len(chunks)} requests of {args.per_request}, {args.concurrency} in flight: "
          f"{tokens} tokens in {seconds:.2f} s = {tokens / seconds:,.0f} tokens/s, {errors} errors")
    return errors


async def queries(args):
    rng = random.Random(args.seed)
    latencies, errors = [], 0
    connector = aiohttp.TCPConnector(limit=args.connections)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        deadline = time.perf_counter() + args.seconds

        async def client():
            nonlocal errors
            while time.perf_counter() < deadline:
                text = random_text(rng, 15)
                t = time.perf_counter()
                try:
                    await post(session, args.url, args.model, text)
                    latencies.append(time.perf_counter() - t)
                except Exception as e:  # noqa: BLE001
                    errors += 1
                    print(f"error: {e}", file=sys.stderr)
        t0 = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(args.connections)))
        seconds = time.perf_counter() - t0
    if not latencies:
        print(f"queries: no answer in {seconds:.1f} s, {errors} errors")
        return errors or 1
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    print(f"queries: {len(latencies)} in {seconds:.1f} s on {args.connections} connections = "
          f"{len(latencies) / seconds:,.0f} requests/s, p50 {statistics.median(latencies) * 1e3:.2f} ms, "
          f"p99 {p99 * 1e3:.2f} ms, {errors} errors")
    return errors


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:30000")
    ap.add_argument("--model", default="embedserve", help="the request's model name (one model served: any name)")
    ap.add_argument("--seed", type=int, default=1)
    sub = ap.add_subparsers(dest="workload", required=True)
    b = sub.add_parser("bulk")
    b.add_argument("--texts", type=int, default=6000)
    b.add_argument("--per-request", type=int, default=64)
    b.add_argument("--concurrency", type=int, default=16)
    q = sub.add_parser("queries")
    q.add_argument("--connections", type=int, default=128)
    q.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args(argv)
    errors = asyncio.run(bulk(args) if args.workload == "bulk" else queries(args))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
