#!/usr/bin/env python3
"""Query latency while one long input runs (issue 8 item 4, issue 13 item 3): against a running `embedserve serve`
(or any OpenAI-compatible embedding server), sends one input of `--long-tokens` token ids, and while it runs
16-token queries (token ids too, so their length is exact) on `--connections` connections; prints the p50/p99/max
latency of the queries sent while the long input was in flight, and the long input's own time.

    python3 bench/server/long_input_latency.py --url http://127.0.0.1:30000 --model NAME --long-tokens 32000

The server needs --context-length at least --long-tokens (the 4B/8B default 32768 is enough). With chunked prefill
a query waits for one chunk at most, so the p99 follows the chunk's time (--chunked-prefill-size); without it a
query waits for the whole long input. Every answer is checked (HTTP 200, one finite vector per input); the run
exits 1 on any error. aiohttp only.
"""
import argparse
import asyncio
import base64
import json
import math
import random
import statistics
import struct
import sys
import time

import aiohttp


def token_ids(rng, n, vocab):
    # Ids of ordinary tokens (the first 100k of Qwen3's vocabulary are byte-level BPE merges), no special ones.
    return [rng.randrange(1000, vocab) for _ in range(n)]


async def embed(session, url, model, ids):
    payload = {"model": model, "input": [ids], "encoding_format": "base64"}
    t0 = time.monotonic()
    async with session.post(url + "/v1/embeddings", json=payload) as r:
        body = await r.read()
        elapsed = time.monotonic() - t0
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {body[:300]!r}")
        doc = json.loads(body)
        raw = base64.b64decode(doc["data"][0]["embedding"])
        values = struct.unpack(f"<{len(raw) // 4}f", raw)
        if len(doc["data"]) != 1 or not all(math.isfinite(v) for v in values):
            raise RuntimeError("an answer lacks its vector or holds a non-finite value")
        return t0, elapsed


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))]


async def run(args):
    rng = random.Random(args.seed)
    long_ids = token_ids(rng, args.long_tokens, args.vocab)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0)) as session:
        # Warm-up: the query shape once (a CUDA graph is recorded at its first batch of a shape).
        await embed(session, args.url, args.model, token_ids(rng, args.query_tokens, args.vocab))
        long_task = asyncio.create_task(embed(session, args.url, args.model, long_ids))
        samples, errors = [], 0  # (start, latency) of every query

        async def queries(worker):
            nonlocal errors
            wrng = random.Random(args.seed * 1000 + worker)
            while not long_task.done():
                try:
                    samples.append(await embed(session, args.url, args.model,
                                               token_ids(wrng, args.query_tokens, args.vocab)))
                except Exception as e:  # noqa: BLE001 - every failure is counted and reported
                    errors += 1
                    print(f"query error: {e}", file=sys.stderr)

        await asyncio.sleep(args.head_start)  # the long input reaches the engine first
        workers = [asyncio.create_task(queries(w)) for w in range(args.connections)]
        try:
            long_started, long_elapsed = await long_task
        except Exception as e:  # noqa: BLE001
            print(f"the long input failed: {e}", file=sys.stderr)
            long_started, long_elapsed, errors = time.monotonic(), float("nan"), errors + 1
        long_end = long_started + long_elapsed
        await asyncio.gather(*workers)
    print(f"long input: {args.long_tokens} tokens in {long_elapsed:.2f} s")
    # Queries sent while the long input ran: without chunks they wait for all of it, so they finish after it.
    ms = [latency * 1000 for started, latency in samples if started < long_end]
    if not ms:
        print("no query was sent while the long input ran", file=sys.stderr)
        return 1
    print(f"{args.query_tokens}-token queries sent during it: {len(ms)} on {args.connections} connections, "
          f"p50 {statistics.median(ms):.1f} ms, p99 {percentile(ms, 99):.1f} ms, max {max(ms):.1f} ms, "
          f"errors {errors}")
    if len(ms) < 100:
        print(f"(only {len(ms)} queries: the p99 is their maximum)", file=sys.stderr)
    return 1 if errors else 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:30000", help="the server's base URL")
    p.add_argument("--model", default="", help="the model name to send")
    p.add_argument("--long-tokens", type=int, default=32000, help="length of the long input, in tokens")
    p.add_argument("--query-tokens", type=int, default=16, help="length of each query, in tokens")
    p.add_argument("--connections", type=int, default=8, help="queries in flight at once")
    p.add_argument("--vocab", type=int, default=151000, help="token ids are drawn below this")
    p.add_argument("--head-start", type=float, default=0.2, help="seconds between the long input and the queries")
    p.add_argument("--timeout", type=float, default=1800, help="seconds any one request may take")
    p.add_argument("--seed", type=int, default=1)
    sys.exit(asyncio.run(run(p.parse_args())))


if __name__ == "__main__":
    main()
