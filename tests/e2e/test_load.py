"""A bounded load test on loopback: ~65 s of mixed traffic with wrk, no errors and no memory growth."""
import threading
import time

from helpers import MODEL_NAME
from wrk_load import run_wrk

DURATION_S = 65
WARMUP_S = 15            # allocator pools, thread stacks and connection buffers settle in this time
RSS_GROWTH_BOUND = 20 * 2**20  # after warm-up, a leak of ~100 bytes per request would cross this


def mixed_requests() -> list[tuple[str, dict]]:
    words = "the quick brown fox jumps over the lazy dog while 北京 and données are embedded".split()
    texts = [" ".join(words[i % 7: i % 7 + 3 + i % 9]) for i in range(64)]
    return [
        ("/v1/embeddings", {"model": MODEL_NAME, "input": "a short interactive query", "encoding_format": "float"}),
        ("/v1/embeddings", {"model": MODEL_NAME, "input": texts[:8]}),  # base64, the client default
        ("/v1/embeddings", {"model": MODEL_NAME, "input": texts, "encoding_format": "float", "dimensions": 16}),
        ("/v1/embeddings", {"model": MODEL_NAME, "input": [[9707, 1879, 151643], [40, 1079]]}),
        ("/v1/embeddings", {"model": MODEL_NAME, "input": "find passages", "prompt_name": "query"}),
        ("/embed", {"inputs": texts[8:24]}),
    ]


def test_load_no_errors_no_memory_growth(start_server):
    srv = start_server()
    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def sample_rss():
        t0 = time.monotonic()
        while not stop.is_set():
            samples.append((time.monotonic() - t0, srv.rss_bytes()))
            stop.wait(0.5)

    sampler = threading.Thread(target=sample_rss, daemon=True)
    rss_start = srv.rss_bytes()
    sampler.start()
    try:
        result = run_wrk(srv.base_url, mixed_requests(), seconds=DURATION_S, connections=32)
    finally:
        stop.set()
        sampler.join()

    after_warmup = [rss for t, rss in samples if t >= WARMUP_S]
    baseline = after_warmup[0]
    peak = max(after_warmup)
    mib = 2**20
    print(f"\nload: {result['requests']} requests in {result['duration_us'] / 1e6:.1f} s "
          f"({result['requests'] / (result['duration_us'] / 1e6):.0f} req/s), ok={result['ok']} "
          f"non2xx={result['non2xx']} {result['non2xx_statuses']}, socket errors connect/read/write/timeout="
          f"{result['connect_errors']}/{result['read_errors']}/{result['write_errors']}/{result['timeouts']}, "
          f"latency p50={result['latency_us']['p50'] / 1e3:.2f} ms p99={result['latency_us']['p99'] / 1e3:.2f} ms")
    print(f"load: RSS start {rss_start / mib:.1f} MiB, at {WARMUP_S} s {baseline / mib:.1f} MiB, "
          f"peak after warm-up {peak / mib:.1f} MiB, end {samples[-1][1] / mib:.1f} MiB "
          f"(bound: growth < {RSS_GROWTH_BOUND / mib:.0f} MiB)")

    assert result["requests"] > 0 and result["ok"] == result["requests"], result["wrk_output"]
    assert result["non2xx"] == 0, f"non-2xx responses under load: {result['non2xx_statuses']}"
    assert (result["connect_errors"], result["read_errors"], result["write_errors"], result["timeouts"]) == \
        (0, 0, 0, 0), result["wrk_output"]
    assert len(after_warmup) >= 50, "RSS was sampled through the run"
    assert peak - baseline < RSS_GROWTH_BOUND, \
        f"RSS grew {(peak - baseline) / mib:.1f} MiB after warm-up (bound {RSS_GROWTH_BOUND / mib:.0f} MiB)"
    assert srv.alive() and srv.request("GET", "/health")[0] == 200
