"""The work and memory one request can cost are bounded by the context length, not by the body (issue 13, item 1):
a 20 MB text or list of ids is refused or truncated in well under a second with little extra memory, and a small
request arriving meanwhile is answered at once."""
import concurrent.futures
import json
import time

from helpers import CONTEXT_LENGTH, MODEL_NAME, assert_error, vectors

TWENTY_MB = 20_000_000


def peak_rss_bytes(srv) -> int:
    with open(f"/proc/{srv.proc.pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("VmHWM missing from /proc status")


def timed_post(srv, path, payload: bytes):
    start = time.monotonic()
    status, _, raw = srv.request("POST", path, payload, {"Content-Type": "application/json"}, timeout=120)
    return status, json.loads(raw), time.monotonic() - start


def test_a_20_mb_text_costs_milliseconds_and_little_memory(start_server):
    srv = start_server("--context-length", str(CONTEXT_LENGTH))
    word = json.dumps({"model": MODEL_NAME, "input": "a" * TWENTY_MB}).encode()
    truncated = json.dumps({"model": MODEL_NAME, "input": "ab" * (TWENTY_MB // 2), "truncate": True,
                            "encoding_format": "float"}).encode()
    before = peak_rss_bytes(srv)
    status, body, seconds = timed_post(srv, "/v1/embeddings", word)
    err = assert_error(status, body, 400)
    assert err["code"] == "context_length_exceeded" and str(CONTEXT_LENGTH) in err["message"], err
    assert seconds < 1.0, f"refusing a 20 MB text took {seconds:.2f} s"
    status, body, seconds = timed_post(srv, "/v1/embeddings", truncated)
    assert status == 200 and body["usage"]["prompt_tokens"] == CONTEXT_LENGTH, body
    assert seconds < 1.0, f"truncating a 20 MB text took {seconds:.2f} s"
    grew = peak_rss_bytes(srv) - before
    assert grew < 100 * 2**20, f"peak RSS grew by {grew / 2**20:.0f} MiB"


def test_a_flat_list_of_5m_ids_is_refused_or_truncated_without_materialising_it(start_server):
    srv = start_server("--context-length", str(CONTEXT_LENGTH))
    ids = ",".join(["9707"] * 5_000_000)  # 25 MB of ids; a DOM node each was 16+ bytes, 1 GB for the 57 MiB
    before = peak_rss_bytes(srv)
    status, body, seconds = timed_post(srv, "/v1/embeddings", f'{{"input": [{ids}]}}'.encode())
    err = assert_error(status, body, 400)
    assert err["code"] == "context_length_exceeded" and "5000000 tokens" in err["message"], err
    status, body, _ = timed_post(srv, "/v1/embeddings", f'{{"input": [{ids}], "truncate": true}}'.encode())
    assert status == 200 and body["usage"]["prompt_tokens"] == CONTEXT_LENGTH, body
    grew = peak_rss_bytes(srv) - before
    assert grew < 100 * 2**20, f"peak RSS grew by {grew / 2**20:.0f} MiB"
    # TEI's truncation from the left keeps the list's last ids: the vector equals that of the last ids alone.
    tail = [151643] + [9707] * (CONTEXT_LENGTH - 1)
    status, left_hdrs, left = srv.request("POST", "/embed", f'{{"inputs": [[1, 2, 3, {ids}, {",".join(map(str, tail))}]], "truncate": true, "truncation_direction": "Left"}}'.encode(),
                                          {"Content-Type": "application/json"})
    assert status == 200, left
    status, _, alone = srv.post_json("/embed", {"inputs": [tail]})
    assert status == 200 and json.loads(left) == alone


def test_a_small_request_is_not_delayed_by_two_huge_ones(start_server):
    srv = start_server("--context-length", str(CONTEXT_LENGTH), "--tokenizer-threads", "2")
    huge = json.dumps({"model": MODEL_NAME, "input": "a" * TWENTY_MB}).encode()
    small = {"model": MODEL_NAME, "input": "hello", "encoding_format": "float"}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(timed_post, srv, "/v1/embeddings", huge) for _ in range(2)]
        time.sleep(0.2)  # both bodies on their way or being tokenised
        start = time.monotonic()
        status, _, body = srv.post_json("/v1/embeddings", small, timeout=60)
        small_seconds = time.monotonic() - start
        results = [f.result() for f in futures]
    assert status == 200 and vectors(body).shape == (1, 32)
    # The huge bodies are tokenised on threads of their own (Router::kLargeBodyBytes): the small request does not
    # wait for them (0.47 s when they shared its threads; 0.008 s since).
    assert small_seconds < 0.2, f"the small request waited {small_seconds:.2f} s"
    for status, body, seconds in results:
        assert_error(status, body, 400)
        assert seconds < 2.0, f"a huge request took {seconds:.2f} s"


def test_tokenize_holds_each_prompt_to_the_context_length(server):
    status, _, raw = server.request("POST", "/tokenize", json.dumps({"prompt": "hello " * 1_000_000}).encode(),
                                    {"Content-Type": "application/json"})
    err = assert_error(status, raw, 400)
    assert err["code"] == "context_length_exceeded" and err["param"] == "prompt" and str(CONTEXT_LENGTH) in err["message"]
    status, _, body = server.post_json("/tokenize", {"prompt": "hello world"})
    assert status == 200 and body["count"] == 3
