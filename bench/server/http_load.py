#!/usr/bin/env python3
"""The two HTTP workloads of docs/PERFORMANCE.md against a running `embedserve serve` (or any OpenAI-compatible
embedding server), so anyone can repeat them:

  bulk     N texts of 16–512 tokens (random words, fixed seed), `--per-request` texts per request, `--concurrency`
           requests in flight, sent in arrival order: tokens/s from the answers' usage.prompt_tokens, wall clock.
           `--processes P` spreads the connections over P client processes (bodies serialised before the clock
           starts, answers base64), so one Python process's parsing does not cap a fast server (--dp on big GPUs:
           ~1M tokens/s on the 0.6B); `--vector-digests FILE` writes a SHA-256 of each request's vector bytes, so
           two runs (e.g. --dp 1 and --dp 2) can be compared bit for bit.
  queries  15-word queries, one per request, on `--connections` connections for `--seconds`: requests/s, p50/p99
           latency, errors.

    python3 bench/server/http_load.py --url http://127.0.0.1:30000 --model NAME bulk --texts 6000
    python3 bench/server/http_load.py --url http://127.0.0.1:30000 bulk --texts 24000 --processes 4 --vector-digests d.json
    python3 bench/server/http_load.py --url http://127.0.0.1:30000 --model NAME queries --connections 128 --seconds 20

Every answer is checked (HTTP 200, one vector per input, finite values); a failure counts as an error and the run
exits 1 if there was any. aiohttp only.
"""
import argparse
import asyncio
import base64
import hashlib
import json
import multiprocessing
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


async def post_body(session, url, body, n_inputs):
    """POSTs a serialised request; returns (prompt tokens, SHA-256 of the vectors' bytes in input order)."""
    async with session.post(url + "/v1/embeddings", data=body, headers={"Content-Type": "application/json"}) as r:
        raw = await r.read()
        if r.status != 200:
            raise RuntimeError(f"HTTP {r.status}: {raw[:200]!r}")
        doc = json.loads(raw)
        data = sorted(doc["data"], key=lambda d: d["index"])
        if len(data) != n_inputs:
            raise RuntimeError("an answer lacks vectors")
        digest = hashlib.sha256()
        for d in data:
            digest.update(base64.b64decode(d["embedding"]))
        return doc["usage"]["prompt_tokens"], digest.hexdigest()


def bulk_requests(args):
    texts = bulk_texts(args.texts, args.seed)
    chunks = [texts[i:i + args.per_request] for i in range(0, len(texts), args.per_request)]
    return [json.dumps({"model": args.model, "input": c, "encoding_format": "base64"}).encode() for c in chunks], \
        [len(c) for c in chunks]


async def bulk_client(args, bodies, sizes, connections, next_index, start_at):
    """One process's share: `connections` workers take the next request index from the shared counter (arrival
    order over all processes) until none is left. Returns (tokens, errors, {index: digest}, first, last)."""
    tokens, errors, digests = 0, 0, {}
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=600)) as session:
        async def worker():
            nonlocal tokens, errors
            while True:
                with next_index.get_lock():
                    i = next_index.value
                    next_index.value += 1
                if i >= len(bodies):
                    return
                try:
                    done, digest = await post_body(session, args.url, bodies[i], sizes[i])
                    tokens += done  # not `tokens += await …`: that reads tokens before the await, losing others' counts
                    digests[i] = digest
                except Exception as e:  # noqa: BLE001 — every failure is counted and reported
                    errors += 1
                    print(f"error: {e}", file=sys.stderr)
        while time.time() < start_at:  # every process starts at once
            await asyncio.sleep(min(0.01, max(0.0, start_at - time.time())))
        first = time.time()
        await asyncio.gather(*(worker() for _ in range(connections)))
        return tokens, errors, digests, first, time.time()


def bulk_process(args, bodies, sizes, connections, next_index, start_at, results):
    results.put(asyncio.run(bulk_client(args, bodies, sizes, connections, next_index, start_at)))


def bulk(args):
    bodies, sizes = bulk_requests(args)
    processes = max(1, min(args.processes, args.concurrency))
    # Each process gets its share of the connections (the first ones one more when they do not divide evenly).
    shares = [args.concurrency // processes + (p < args.concurrency % processes) for p in range(processes)]
    next_index = multiprocessing.get_context("fork").Value("q", 0)
    start_at = time.time() + 0.5  # once every process is up (forked: the bodies are already in their memory)
    if processes == 1:
        outcomes = [asyncio.run(bulk_client(args, bodies, sizes, shares[0], next_index, start_at))]
    else:
        context = multiprocessing.get_context("fork")
        results = context.Queue()
        procs = [context.Process(target=bulk_process, args=(args, bodies, sizes, n, next_index, start_at, results))
                 for n in shares]
        for p in procs:
            p.start()
        outcomes = [results.get() for _ in procs]
        for p in procs:
            p.join()
    tokens = sum(o[0] for o in outcomes)
    errors = sum(o[1] for o in outcomes)
    digests = {}
    for o in outcomes:
        digests.update(o[2])
    seconds = max(o[4] for o in outcomes) - min(o[3] for o in outcomes)
    print(f"bulk: {args.texts} texts in {len(bodies)} requests of {args.per_request}, {args.concurrency} in flight"
          f"{f' from {processes} processes' if processes > 1 else ''}: "
          f"{tokens} tokens in {seconds:.2f} s = {tokens / seconds:,.0f} tokens/s, {errors} errors")
    if args.vector_digests:
        with open(args.vector_digests, "w") as f:
            json.dump({str(i): digests[i] for i in sorted(digests)}, f, indent=0)
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
    b.add_argument("--processes", type=int, default=1, help="client processes sharing the connections")
    b.add_argument("--vector-digests", help="write {request index: SHA-256 of its vectors' bytes} to this JSON file")
    q = sub.add_parser("queries")
    q.add_argument("--connections", type=int, default=128)
    q.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args(argv)
    errors = bulk(args) if args.workload == "bulk" else asyncio.run(queries(args))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
