"""The other routes: /health, /v1/models, /metrics, /tokenize, TEI's /embed and /info, prompt_name/instruction."""
import datetime
import json
import re
import time

import numpy as np

from helpers import CONTEXT_LENGTH, HIDDEN, MODEL_NAME, assert_error, embed_one, parse_prometheus

QUERY_PROMPT = "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:"


def test_health(server):
    status, headers, raw = server.request("GET", "/health")
    assert status == 200
    assert json.loads(raw) == {"status": "healthy"}
    assert headers["content-type"].startswith("application/json")


def test_models_lists_the_served_name(server):
    status, _, raw = server.request("GET", "/v1/models")
    assert status == 200
    body = json.loads(raw)
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == [MODEL_NAME], "default served name is the model directory's name"
    assert all(m["object"] == "model" for m in body["data"])


def test_served_model_name_aliases(start_server):
    srv = start_server("--served-model-name", "alias-one", "alias-two")
    status, _, raw = srv.request("GET", "/v1/models")
    assert sorted(m["id"] for m in json.loads(raw)["data"]) == ["alias-one", "alias-two"]
    for name in ("alias-one", "alias-two"):
        status, _, body = srv.post_json("/v1/embeddings", {"model": name, "input": "hi"})
        assert status == 200 and body["model"] == name
    # Another name means the one model served (as in SGLang), reported by its first served name ...
    status, _, body = srv.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": "hi"})
    assert status == 200 and body["model"] == "alias-one"
    # ... unless --strict-model-name is given.
    strict = start_server("--served-model-name", "alias-one", "alias-two", "--strict-model-name")
    status, _, body = strict.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": "hi"})
    assert_error(status, body, 404)


def metrics(server):
    status, headers, raw = server.request("GET", "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    return parse_prometheus(raw.decode())


def request_count(samples, route: str, status: str) -> float:
    return samples.get(("embedserve_requests_total", (("route", route), ("status", status))), 0.0)


def test_metrics_parse_and_count_requests(server):
    before, _ = metrics(server)
    n, tokens = 3, 0
    for _ in range(n):
        status, _, body = server.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": ["one", "two"]})
        assert status == 200
        tokens += body["usage"]["prompt_tokens"]
    status, _, _ = server.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": ""})
    assert status == 400
    # The engine counters are bumped on the batcher thread; give it a moment after the last answer.
    deadline = time.monotonic() + 2
    while True:
        after, types = metrics(server)
        embedded = after[("embedserve_tokens_embedded_total", ())] - before[("embedserve_tokens_embedded_total", ())]
        if embedded >= tokens or time.monotonic() > deadline:
            break
        time.sleep(0.05)

    assert request_count(after, "/v1/embeddings", "200") - request_count(before, "/v1/embeddings", "200") == n
    assert request_count(after, "/v1/embeddings", "400") - request_count(before, "/v1/embeddings", "400") == 1
    assert request_count(after, "/metrics", "200") >= 1
    assert embedded == tokens, "tokens embedded must equal the usage reported to clients"
    assert after[("embedserve_sequences_embedded_total", ())] - before[("embedserve_sequences_embedded_total", ())] \
        == 2 * n
    # /health answers 503 while the model loads (the fixture polls it then); nothing else may see a 5xx.
    five_hundreds = {k: v for k, v in after.items() if k[0] == "embedserve_requests_total"
                     and dict(k[1])["status"].startswith("5") and dict(k[1])["route"] != "/health" and v > 0}
    assert not five_hundreds, f"no request may have been answered with a 5xx: {five_hundreds}"

    for gauge in ("embedserve_queue_requests", "embedserve_queue_inputs", "embedserve_queue_tokens",
                  "embedserve_requests_in_flight"):
        assert types.get(gauge) == "gauge" and (gauge, ()) in after
    for hist in ("embedserve_batch_sequences", "embedserve_batch_tokens", "embedserve_queue_seconds",
                 "embedserve_compute_seconds"):
        assert types.get(hist) == "histogram"
        buckets = sorted(((float(dict(k[1])["le"]), v) for k, v in after.items() if k[0] == hist + "_bucket"))
        assert buckets and buckets[-1][0] == float("inf")
        assert [v for _, v in buckets] == sorted(v for _, v in buckets), f"{hist} buckets must be cumulative"
        assert buckets[-1][1] == after[(hist + "_count", ())]
        assert after[(hist + "_count", ())] > before.get((hist + "_count", ()), 0)


def test_tokenize_matches_usage(server):
    for text in ["hello world", "Qwen3 嵌入模型 🚀", "a " * 20]:
        status, _, tok = server.post_json("/tokenize", {"model": MODEL_NAME, "prompt": text})
        assert status == 200, tok
        _, _, emb = server.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": text})
        assert len(tok["tokens"]) == emb["usage"]["prompt_tokens"]


def test_prompt_name_and_instruction(server):
    text = "how do vaccines work"
    plain = embed_one(server, text)
    by_name = embed_one(server, text, prompt_name="query")
    by_hand = embed_one(server, QUERY_PROMPT + text)
    assert np.linalg.norm(plain - by_name) > 1e-3, "prompt_name must change the vector"
    assert np.array_equal(by_name, by_hand)
    status, _, body = server.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": text,
                                                          "prompt_name": "no-such-prompt"})
    assert_error(status, body, 400)
    instructed = embed_one(server, text, instruction="Given a question, find the answer")
    assert np.linalg.norm(plain - instructed) > 1e-3, "an instruction must change the vector"


def test_tei_embed(server):
    texts = ["first text", "second one"]
    expect = np.array([embed_one(server, t) for t in texts])
    status, _, body = server.post_json("/embed", {"inputs": texts})
    assert status == 200, body
    assert np.array_equal(np.array(body, dtype=np.float32), expect), "TEI and OpenAI routes share one embed path"
    status, _, body = server.post_json("/embed", {"inputs": texts[0]})
    assert status == 200 and len(body) == 1 and len(body[0]) == HIDDEN
    status, _, body = server.post_json("/embed", {"inputs": texts, "dimensions": 8, "normalize": True})
    got = np.array(body, dtype=np.float32)
    assert got.shape == (2, 8)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, expect[:, :8] / np.linalg.norm(expect[:, :8], axis=1, keepdims=True), atol=1e-6)
    status, _, body = server.post_json("/embed", {"inputs": texts[0], "prompt_name": "query"})
    assert np.array_equal(np.array(body[0], dtype=np.float32), embed_one(server, QUERY_PROMPT + texts[0]))
    long_text = " ".join(f"w{i}" for i in range(4 * CONTEXT_LENGTH))
    status, _, body = server.post_json("/embed", {"inputs": long_text, "truncate": True,
                                                  "truncation_direction": "Right"})
    assert status == 200 and len(body[0]) == HIDDEN
    status, _, body = server.post_json("/embed", {"inputs": long_text})
    assert status == 413 and body["error_type"] == "Validation", body  # TEI's status for an input too long
    status, _, body = server.post_json("/embed", {"inputs": 5})
    assert status == 422 and body["error_type"] == "Validation", body  # TEI (axum) for a body off the schema


def test_tei_normalize_false_returns_the_raw_pooled_vector(server):
    texts = ["first text", "second one"]
    status, _, unit = server.post_json("/embed", {"inputs": texts})
    assert status == 200
    status, _, raw = server.post_json("/embed", {"inputs": texts, "normalize": False})
    assert status == 200, raw
    unit, raw = np.array(unit, dtype=np.float64), np.array(raw, dtype=np.float64)
    norms = np.linalg.norm(raw, axis=1)
    assert np.all(np.abs(norms - 1.0) > 1e-3), f"raw vectors should not be unit vectors: norms {norms}"
    np.testing.assert_allclose(raw / norms[:, None], unit, atol=1e-6)
    # With dimensions: the leading components of the raw vector, not renormalised.
    status, _, cut = server.post_json("/embed", {"inputs": texts, "normalize": False, "dimensions": 8})
    assert status == 200
    np.testing.assert_allclose(np.array(cut), raw[:, :8], rtol=1e-6, atol=1e-7)


def test_tei_errors_have_tei_statuses(server):
    """TEI answers with the status of its ErrorType (router/src/http/server.rs): Validation (too long, too many) 413,
    Empty 400, Tokenizer 422; and a body that is JSON but not the schema gets axum's 422."""
    cases = [
        ({"inputs": "x " * (4 * CONTEXT_LENGTH)}, 413, "Validation"),
        ({"inputs": ["a"] * 2049}, 413, "Validation"),
        ({"inputs": ""}, 400, "Empty"),
        ({"inputs": []}, 400, "Empty"),
        ({"inputs": [[151665]]}, 422, "Tokenizer"),  # past the tiny model's 151665-row table
        ({"inputs": "a", "normalize": "yes"}, 422, "Validation"),
        ({"inputs": "a", "truncation_direction": "Middle"}, 422, "Validation"),
        ({"input": "a"}, 422, "Validation"),
    ]
    for payload, want_status, want_type in cases:
        status, _, body = server.post_json("/embed", payload)
        assert (status, body.get("error_type")) == (want_status, want_type), (payload, status, body)
        assert isinstance(body["error"], str) and body["error"]
    status, _, raw = server.request("POST", "/embed", b'{"inputs": ', {"Content-Type": "application/json"})
    assert status == 400, raw  # not JSON at all: axum's 400


def test_tei_info(server):
    status, _, raw = server.request("GET", "/info")
    assert status == 200
    info = json.loads(raw)
    assert info["model_id"] == MODEL_NAME
    assert info["max_input_length"] == CONTEXT_LENGTH
    assert info["max_client_batch_size"] == 2048
    # The CPU's default keeps the bf16 checkpoint's weights in bf16 and computes activations in f32.
    assert info["model_dtype"] == "bfloat16"
    assert "bf16 weights, f32 activations" in info["backend"], info["backend"]


def test_the_f32_mode_says_so_in_info_and_the_start_up_line(start_server):
    """--dtype float32 widens the bf16 checkpoint's weights to f32: /info's model_dtype (TEI: the dtype the model
    runs in) and the start-up line say f32, not the stored bf16."""
    srv = start_server("--dtype", "float32")
    info = json.loads(srv.request("GET", "/info")[2])
    assert info["model_dtype"] == "float32"
    assert "f32 weights and activations" in info["backend"], info["backend"]
    ready = next(line for line in srv.log().splitlines() if "ready in" in line)
    assert "weights stored bf16, held f32" in ready and "workspace" in ready, ready


def test_access_log_has_one_line_per_request(start_server):
    srv = start_server()
    _, _, ok = srv.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": ["one", "two", "three"]})
    tokens = ok["usage"]["prompt_tokens"]
    status, _, _ = srv.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": []})
    assert status == 400
    srv.request("GET", "/v1/models")
    # method, path, status, inputs, tokens, milliseconds — on one line each
    ok_line = re.compile(rf"POST /v1/embeddings 200\D.*\b3\b.*\b{tokens}\b.*\d(\.\d+)? ?ms")
    deadline = time.monotonic() + 2
    while True:
        lines = srv.log().splitlines()
        embed_lines = [ln for ln in lines if "POST /v1/embeddings" in ln]
        # A line is logged after its response goes out, so the last request's line may lag its answer.
        models_seen = any("GET /v1/models" in ln for ln in lines)
        if (len(embed_lines) >= 2 and models_seen) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(embed_lines) == 2, "\n".join(lines)
    # Each line is written after its response went out, from whichever io thread sent it: the 400's line may
    # land before the 200's, so match them by status rather than by position.
    assert sum(bool(ok_line.search(ln)) for ln in embed_lines) == 1, embed_lines
    assert sum(bool(re.search(r"POST /v1/embeddings 400\b", ln)) for ln in embed_lines) == 1, embed_lines
    assert sum("GET /v1/models" in ln for ln in lines) == 1


def test_access_log_lines_start_with_a_utc_timestamp(start_server):
    srv = start_server()
    before = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=1)
    srv.request("GET", "/v1/models")
    deadline = time.monotonic() + 2
    while not any("GET /v1/models" in ln for ln in srv.log().splitlines()) and time.monotonic() < deadline:
        time.sleep(0.05)
    line = next(ln for ln in srv.log().splitlines() if "GET /v1/models" in ln)
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z GET /v1/models 200 ", line)
    assert m, line
    when = datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc)
    assert before <= when <= datetime.datetime.now(datetime.timezone.utc), line
