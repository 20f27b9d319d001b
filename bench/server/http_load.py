#!/usr/bin/env python3
"""The two HTTP workloads of docs/PERFORMANCE.md against a running `embedserve serve` (or any OpenAI-compatible
embedding server), so anyone can repeat them:

  bulk     N texts of 16–512 tokens (random words, fixed seed), `--per-request` texts per request, `--concurrency`
           requests in flight, sent in arrival order: tokens/s from the answers' usage.prompt_tokens, wall clock.
  queries  15-word queries, one per request, on `--connections` connections for `--seconds`: requests/s,
           p50/p90/p99/p999 latency, errors. `--tokens N` makes every query exactly N tokens long on Qwen3's
           tokenizer, its EOS included (the issue's "16-token query"): 15 random words are 16 to 20 tokens.

    python3 bench/server/http_load.py --url http://127.0.0.1:30000 --model NAME bulk --texts 6000
    python3 bench/server/http_load.py --url http://127.0.0.1:30000 bulk --texts 2000 --vector-digests d.json
    python3 bench/server/http_load.py --url http://127.0.0.1:30000 --model NAME queries --connections 128 --seconds 20

This file is the one definition of the workloads: `--write-bodies FILE` writes the requests a workload sends
(`METHOD PATH INPUTS BODY` per line, the exact bytes of each JSON body) for the native load generator,
`build/bench/server/load/embedserve_http_load --bodies FILE`, which replays them where one Python process cannot
keep up (~5k requests/s):

    python3 bench/server/http_load.py bulk --write-bodies /tmp/bulk.req
    embedserve_http_load --bodies /tmp/bulk.req --once --connections 16
    python3 bench/server/http_load.py queries --write-bodies /tmp/queries.req   # the first --count queries
    embedserve_http_load --bodies /tmp/queries.req --connections 128 --duration 20

Every answer is checked (HTTP 200, one vector per input); a failure counts as an error and the run
exits 1 if there was any. `bulk --vector-digests FILE` also writes a SHA-256 of each request's vector bytes (base64
answers: the f32 bits), so two runs — `--dp 1` and `--dp 2`, say — can be compared bit for bit. The result is one JSON line on stdout with the keys embedserve_http_load prints
(requests, errors, errors_by_kind, requests_per_s, tokens, tokens_per_s, p50_ms … max_ms), a readable line on
stderr. aiohttp only.
"""
import argparse
import asyncio
import base64
import hashlib
import json
import math
import random
import sys
import time

import aiohttp

WORDS = ("river stone light cloud paper engine garden silver window market forest signal winter harbor letter "
         "mountain orange pocket question rhythm shadow theory valley wonder yellow anchor bridge candle dragon "
         "eleven feather glacier hammer island jungle kettle lantern meadow needle ocean planet quartz rocket").split()

# The WORDS that Qwen3's tokenizer encodes as one token both with a leading space and without (a text's first
# word has none): N − 1 of them and the EOS are exactly N tokens (tests/e2e/test_http_load_tool.py checks it).
ONE_TOKEN_WORDS = ("river stone light cloud paper engine silver window market forest signal winter letter orange "
                   "question shadow theory yellow anchor bridge dragon hammer needle planet rocket").split()

ROUTE = "/v1/embeddings"


def random_text(rng, words, vocabulary=WORDS):
    return " ".join(rng.choice(vocabulary) for _ in range(words))


def bulk_texts(n, seed):
    # 16–512 tokens: these words are mostly one token each with their leading space, so words ≈ tokens.
    rng = random.Random(seed)
    return [random_text(rng, rng.randint(15, 511)) for _ in range(n)]


def query_texts(seed, tokens=None):
    """The queries workload's texts, in the order it sends them, forever: 15 random words each, or with `tokens`
    exactly that many tokens on Qwen3's tokenizer, the EOS included."""
    rng = random.Random(seed)
    while True:
        yield random_text(rng, 15) if tokens is None else random_text(rng, tokens - 1, ONE_TOKEN_WORDS)


def request_body(model, inputs, encoding_format="base64"):
    """The exact bytes of one request's JSON body (what both load tools send)."""
    return json.dumps({"model": model, "input": inputs, "encoding_format": encoding_format}).encode()


class RequestFailed(Exception):
    def __init__(self, kind, message):
        super().__init__(f"{kind}: {message}")
        self.kind = kind  # an HTTP status ("401") or what went wrong (bad_answer, closed, timeout)


def check_vectors(doc, expected):
    """The check both tools make: one vector per input (the native tool counts them without a parse)."""
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, list) or len(data) != expected or not all(item.get("embedding") for item in data):
        raise RequestFailed("wrong_vector_count", f"expected {expected} vectors, the answer holds "
                            f"{len(data) if isinstance(data, list) else 'none'}")


async def answer(session, url, model, inputs, encoding_format, headers):
    """One request's answer, checked to hold a vector per input; raises RequestFailed on any failure."""
    expected = len(inputs) if isinstance(inputs, list) else 1
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    try:
        async with session.post(url + ROUTE, data=request_body(model, inputs, encoding_format), headers=hdrs) as r:
            body = await r.read()
            if r.status != 200:
                raise RequestFailed(str(r.status), body[:200].decode(errors="replace"))
    except (OSError, asyncio.TimeoutError, aiohttp.ClientError) as e:
        raise RequestFailed("timeout" if isinstance(e, asyncio.TimeoutError) else "closed", repr(e)) from e
    try:
        doc = json.loads(body)
    except ValueError as e:
        raise RequestFailed("bad_answer", f"not JSON: {body[:120]!r}") from e
    check_vectors(doc, expected)
    return doc


async def post(session, url, model, inputs, encoding_format="base64", headers=None):
    """One request; returns the answer's usage.prompt_tokens, raises RequestFailed on any failure."""
    doc = await answer(session, url, model, inputs, encoding_format, headers)
    return doc["usage"]["prompt_tokens"]


def vectors_digest(doc):
    """SHA-256 of an answer's vector bytes in input order (base64 answers: exactly the f32 bits)."""
    digest = hashlib.sha256()
    for item in sorted(doc["data"], key=lambda d: d["index"]):
        digest.update(base64.b64decode(item["embedding"]))
    return digest.hexdigest()


async def post_for_digest(session, url, model, inputs, headers):
    """One base64 request; returns (usage.prompt_tokens, vectors_digest), raises RequestFailed on any failure."""
    doc = await answer(session, url, model, inputs, "base64", headers)
    return doc["usage"]["prompt_tokens"], vectors_digest(doc)


def report(workload, mode, connections, seconds, latencies, errors, inputs, tokens):
    """Prints the shared JSON line (stdout) and a readable one (stderr); returns the number of errors."""
    latencies.sort()

    def pct(q):  # the smallest latency with at least a fraction q of them at or below it
        if not latencies:
            return 0.0
        return latencies[max(0, min(len(latencies) - 1, math.ceil(q * len(latencies)) - 1))] * 1e3

    n_errors = sum(errors.values())
    line = {
        "tool": "http_load.py", "workload": workload, "mode": mode, "connections": connections, "threads": 1,
        "rate": None, "seconds": round(seconds, 3), "requests": len(latencies), "errors": n_errors,
        "errors_by_kind": dict(sorted(errors.items())),
        "requests_per_s": round(len(latencies) / seconds, 1) if seconds > 0 else 0.0, "inputs": inputs,
        "tokens": tokens if latencies else None,
        "tokens_per_s": round(tokens / seconds, 1) if latencies and seconds > 0 else None,
        "p50_ms": round(pct(0.50), 3), "p90_ms": round(pct(0.90), 3), "p99_ms": round(pct(0.99), 3),
        "p999_ms": round(pct(0.999), 3), "max_ms": round(latencies[-1] * 1e3 if latencies else 0.0, 3),
        "mean_ms": round(sum(latencies) / len(latencies) * 1e3 if latencies else 0.0, 3),
    }
    print(json.dumps(line), flush=True)
    print(f"{workload}: {line['requests']} requests in {seconds:.2f} s on {connections} connections = "
          f"{line['requests_per_s']:,.0f} requests/s, {line['tokens_per_s'] or 0:,.0f} tokens/s, "
          f"p50 {line['p50_ms']:.2f} ms, p99 {line['p99_ms']:.2f} ms, {n_errors} errors", file=sys.stderr)
    return n_errors


def auth_headers(args):
    return {"Authorization": f"Bearer {args.api_key}"} if args.api_key else {}


async def bulk(args):
    texts = bulk_texts(args.texts, args.seed)
    chunks = [texts[i:i + args.per_request] for i in range(0, len(texts), args.per_request)]
    tokens, inputs, latencies, errors, digests = 0, 0, [], {}, {}
    queue = asyncio.Queue()
    for i, c in enumerate(chunks):  # arrival order: workers take the next request as they free
        queue.put_nowait((i, c))
    headers = auth_headers(args)
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=600)) as session:
        async def worker():
            nonlocal tokens, inputs
            while not queue.empty():
                index, chunk = queue.get_nowait()
                t = time.perf_counter()
                try:
                    if args.vector_digests:
                        done, digests[index] = await post_for_digest(session, args.url, args.model, chunk, headers)
                    else:
                        done = await post(session, args.url, args.model, chunk, args.encoding_format, headers)
                    # not `tokens += await …`: that reads tokens before the await, losing others' counts
                    tokens += done
                    inputs += len(chunk)
                    latencies.append(time.perf_counter() - t)
                except RequestFailed as e:
                    errors[e.kind] = errors.get(e.kind, 0) + 1
                    print(f"error: {e}", file=sys.stderr)
        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        seconds = time.perf_counter() - t0
    if args.vector_digests:
        with open(args.vector_digests, "w") as f:
            json.dump({str(i): digests[i] for i in sorted(digests)}, f, indent=0)
    return report("bulk", "once", args.concurrency, seconds, latencies, errors, inputs, tokens)


async def queries(args):
    texts = query_texts(args.seed, args.tokens)
    latencies, errors, tokens = [], {}, 0
    headers = auth_headers(args)
    connector = aiohttp.TCPConnector(limit=args.connections)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        start = time.perf_counter()
        measure_from = start + args.warmup
        deadline = measure_from + args.seconds

        async def client():
            nonlocal tokens
            while time.perf_counter() < deadline:
                text = next(texts)
                t = time.perf_counter()
                try:
                    done = await post(session, args.url, args.model, text, args.encoding_format, headers)
                    now = time.perf_counter()
                    if measure_from <= now < deadline:  # the warm-up's answers and late ones are not counted
                        latencies.append(now - t)
                        tokens += done
                except RequestFailed as e:  # counted from the first request on, the warm-up's included
                    errors[e.kind] = errors.get(e.kind, 0) + 1
                    print(f"error: {e}", file=sys.stderr)
        await asyncio.gather(*(client() for _ in range(args.connections)))
    return report("queries", "closed", args.connections, args.seconds, latencies, errors, len(latencies),
                  tokens)


def write_bodies(args):
    """Writes the workload's requests, one `POST /v1/embeddings INPUTS BODY` line each, in the order sent."""
    if args.workload == "bulk":
        texts = bulk_texts(args.texts, args.seed)
        requests = [texts[i:i + args.per_request] for i in range(0, len(texts), args.per_request)]
    else:
        texts = query_texts(args.seed, args.tokens)
        requests = [next(texts) for _ in range(args.count)]
    with open(args.write_bodies, "wb") as f:
        for inputs in requests:
            n = len(inputs) if isinstance(inputs, list) else 1
            f.write(f"POST {ROUTE} {n} ".encode() + request_body(args.model, inputs, args.encoding_format) + b"\n")
    print(f"{args.workload}: wrote {len(requests)} requests to {args.write_bodies}", file=sys.stderr)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:30000")
    ap.add_argument("--model", default="embedserve", help="the request's model name (one model served: any name)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--encoding-format", choices=("base64", "float"), default="base64")
    ap.add_argument("--api-key", help="sent as Authorization: Bearer KEY")
    writes = argparse.ArgumentParser(add_help=False)
    writes.add_argument("--write-bodies", metavar="FILE",
                        help="write the workload's requests to FILE for embedserve_http_load --bodies and exit")
    sub = ap.add_subparsers(dest="workload", required=True)
    b = sub.add_parser("bulk", parents=[writes])
    b.add_argument("--texts", type=int, default=6000)
    b.add_argument("--per-request", type=int, default=64)
    b.add_argument("--concurrency", type=int, default=16)
    b.add_argument("--vector-digests", metavar="FILE",
                   help="write {request index: SHA-256 of its vectors' bytes} to FILE (asks for base64 answers)")
    q = sub.add_parser("queries", parents=[writes])
    q.add_argument("--connections", type=int, default=128)
    q.add_argument("--seconds", type=float, default=20)
    q.add_argument("--warmup", type=float, default=0, help="seconds run before measuring")
    q.add_argument("--count", type=int, default=20000,
                   help="with --write-bodies: how many queries to write (the native tool replays them in turn)")
    q.add_argument("--tokens", type=int, metavar="N",
                   help="queries of exactly N tokens on Qwen3's tokenizer, the EOS included (N − 1 one-token words), "
                        "instead of 15 words (16–20 tokens)")
    args = ap.parse_args(argv)
    if args.workload == "queries" and args.tokens is not None and args.tokens < 2:
        ap.error("--tokens must be at least 2 (one word and the EOS)")
    if args.write_bodies:
        return write_bodies(args)
    errors = asyncio.run(bulk(args) if args.workload == "bulk" else queries(args))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
