"""The other routes: /health, /v1/models, /metrics, /tokenize, TEI's /embed and /info, prompt_name/instruction."""
import json

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
    status, _, body = srv.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": "hi"})
    assert_error(status, body, 404)


def metrics(server):
    status, headers, raw = server.request("GET", "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    return parse_prometheus(raw.decode())


def find_samples(samples, *label_values, name_part=""):
    """Samples whose name contains `name_part` and whose label values include every one of `label_values`."""
    return {k: v for k, v in samples.items()
            if name_part in k[0] and all(any(lv == want for _, lv in k[1]) for want in label_values)}


def test_metrics_parse_and_count_requests(server):
    before, types = metrics(server)
    n = 3
    tokens = 0
    for _ in range(n):
        status, _, body = server.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": ["one", "two"]})
        assert status == 200
        tokens += body["usage"]["prompt_tokens"]
    status, _, body = server.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": ""})
    assert status == 400
    after, types = metrics(server)

    ok_before = find_samples(before, "/v1/embeddings", "200")
    ok_after = find_samples(after, "/v1/embeddings", "200")
    assert ok_after, f"no request counter labelled with route /v1/embeddings and status 200 in {sorted(after)}"
    assert sum(ok_after.values()) - sum(ok_before.values()) >= n

    bad_after = find_samples(after, "/v1/embeddings", "400")
    assert sum(bad_after.values()) - sum(find_samples(before, "/v1/embeddings", "400").values()) >= 1
    assert not any(lv.startswith("5") and len(lv) == 3 for k in after for _, lv in k[1] if k[0] != "__"), \
        "no request may have been answered with a 5xx"

    histograms = {name for name, t in types.items() if t == "histogram"}
    assert len(histograms) >= 3, f"queue time, compute time and batch sizes should be histograms: {types}"
    for h in histograms:
        assert any(k[0] == h + "_count" for k in after) and any(k[0] == h + "_sum" for k in after)
        assert any(k[0] == h + "_bucket" and ("le", "+Inf") in k[1] for k in after)
    token_counters = [k for k in after if "token" in k[0] and types.get(k[0].removesuffix("_total")) == "counter"
                      or "token" in k[0] and types.get(k[0]) == "counter"]
    assert token_counters, "a counter of tokens embedded"
    assert sum(after[k] for k in token_counters) - sum(before.get(k, 0) for k in token_counters) >= tokens
    assert any("queue" in name for name, t in types.items() if t == "gauge"), "queue depth gauge"


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
    np.testing.assert_allclose(by_name, by_hand, atol=1e-6, rtol=0)
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
    np.testing.assert_allclose(np.array(body, dtype=np.float32), expect, atol=1e-6, rtol=0)
    status, _, body = server.post_json("/embed", {"inputs": texts[0]})
    assert status == 200 and len(body) == 1 and len(body[0]) == HIDDEN
    status, _, body = server.post_json("/embed", {"inputs": texts, "dimensions": 8, "normalize": True})
    got = np.array(body, dtype=np.float32)
    assert got.shape == (2, 8)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, expect[:, :8] / np.linalg.norm(expect[:, :8], axis=1, keepdims=True), atol=1e-5)
    status, _, body = server.post_json("/embed", {"inputs": texts[0], "prompt_name": "query"})
    np.testing.assert_allclose(np.array(body[0], dtype=np.float32), embed_one(server, QUERY_PROMPT + texts[0]),
                               atol=1e-6)
    long_text = " ".join(f"w{i}" for i in range(4 * CONTEXT_LENGTH))
    status, _, body = server.post_json("/embed", {"inputs": long_text, "truncate": True,
                                                  "truncation_direction": "Right"})
    assert status == 200 and len(body[0]) == HIDDEN
    status, _, body = server.post_json("/embed", {"inputs": long_text})
    assert status == 400 and "error" in body
    status, _, body = server.post_json("/embed", {"inputs": 5})
    assert status == 400


def test_tei_info(server):
    status, _, raw = server.request("GET", "/info")
    assert status == 200
    info = json.loads(raw)
    assert info["model_id"] == MODEL_NAME
    assert info["max_input_length"] == CONTEXT_LENGTH
    assert info["max_client_batch_size"] == 2048
