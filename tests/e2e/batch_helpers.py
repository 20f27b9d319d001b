"""Helpers for the Files and Batches API tests: request files in OpenAI's batch format, waiting for a job."""
from __future__ import annotations

import json
import random
import time

WORDS = ["alpha", "beta", "gamma", "delta", "embedding", "server", "crash", "resume", "vector", "token", "日本",
         "naïve", "🙂", "x"]


def request_line(custom_id: str, body: dict, url: str = "/v1/embeddings") -> str:
    return json.dumps({"custom_id": custom_id, "method": "POST", "url": url, "body": body}, ensure_ascii=False) + "\n"


def random_texts_file(n: int, seed: int = 0, max_words: int = 12) -> bytes:
    """`n` request lines, one short random text each, custom_ids r0..r{n-1}."""
    rng = random.Random(seed)
    return "".join(request_line(f"r{i}", {"input": " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, max_words))),
                                          "encoding_format": "float"})
                   for i in range(n)).encode()


def wait_for_batch(get, batch_id: str, timeout: float = 120.0, until=("completed", "failed", "cancelled", "expired")):
    """Polls `get(batch_id)` (returning the batch as a dict) until its status is one of `until`."""
    deadline = time.monotonic() + timeout
    while True:
        b = get(batch_id)
        if b["status"] in until:
            return b
        if time.monotonic() > deadline:
            raise AssertionError(f"batch {batch_id} still {b['status']} after {timeout} s: {b}")
        time.sleep(0.05)


def output_vectors(content: bytes) -> dict[str, list[float]]:
    """custom_id → the first embedding of its response, from an output file; every line must be a 200."""
    out = {}
    for line in content.decode().splitlines():
        rec = json.loads(line)
        assert rec["error"] is None and rec["response"]["status_code"] == 200, rec
        assert rec["custom_id"] not in out, f"custom_id {rec['custom_id']} appears twice"
        out[rec["custom_id"]] = rec["response"]["body"]["data"][0]["embedding"]
    return out
