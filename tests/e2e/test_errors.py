"""Every bad request of the issue's item 3 gets the right status and OpenAI's error shape, never a 500."""

import pytest

from helpers import CONTEXT_LENGTH, HIDDEN, MODEL_NAME, VOCAB_SIZE, assert_error

EMBED = "/v1/embeddings"


def post_raw(server, body: bytes, path=EMBED, headers=None):
    status, _, raw = server.request("POST", path, body, {"Content-Type": "application/json", **(headers or {})})
    return status, raw


def embed_request(server, **fields):
    return server.post_json(EMBED, {"model": MODEL_NAME, **fields})


@pytest.mark.parametrize("body", [
    b'{"model": "tiny-qwen3-embedding", "input": ',   # truncated
    b'{"model": "tiny-qwen3-embedding", "input": "a",}',  # trailing comma
    b"{'input': 'single quotes'}",
    b"",
    b"null",
    b'{"input": "a"} trailing',
])
def test_malformed_json_is_400(server, body):
    status, parsed = post_raw(server, body)
    assert_error(status, parsed, 400, raw_hint=repr(body))


@pytest.mark.parametrize("body, reason, byte", [
    (b'{"input": "a",}', "unexpected '}'", 15),
    (b'{"input": "\xff"}', "UTF-8", 12),
    (b"not json", "invalid literal", 2),
])
def test_malformed_json_message_is_clean_and_says_where(server, body, reason, byte):
    status, parsed = post_raw(server, body)
    message = assert_error(status, parsed, 400, raw_hint=repr(body))["message"]
    assert message.startswith("the request body is not valid JSON: "), message
    assert "json.exception" not in message and "[" not in message, message
    assert reason in message and message.endswith(f" at byte {byte}"), message


@pytest.mark.parametrize("fields", [
    {"input": 5},
    {"input": {"text": "a"}},
    {"input": None},
    {"input": [1, "mixed"]},
    {"input": [[1, 2], "mixed"]},
    {"input": [1.5, 2]},
    {"input": [True]},
    {"input": [[1, [2]]]},
    {"input": "a", "dimensions": "8"},
    {"input": "a", "dimensions": 8.5},
    {"input": "a", "encoding_format": "hex"},
    {"input": "a", "encoding_format": 1},
    {"input": "a", "truncate": "yes"},
    {"input": "a", "user": 7},
])
def test_wrong_types_are_400(server, fields):
    status, _, body = embed_request(server, **fields)
    assert_error(status, body, 400, raw_hint=repr(fields))


def test_wrong_model_type_and_non_object_body_are_400(server):
    status, _, body = server.post_json(EMBED, {"model": 5, "input": "a"})
    assert_error(status, body, 400)
    status, _, body = server.post_json(EMBED, ["model", "input"])
    assert_error(status, body, 400)
    status, _, body = server.post_json(EMBED, {"model": MODEL_NAME})
    assert_error(status, body, 400)  # no input at all


@pytest.mark.parametrize("value", ["", [], [[]], [""], ["ok", ""]])
def test_empty_input_is_400(server, value):
    status, _, body = embed_request(server, input=value)
    assert_error(status, body, 400, raw_hint=repr(value))


def test_more_than_2048_inputs_is_400_and_2048_is_fine(server):
    status, _, body = embed_request(server, input=["x"] * 2049, encoding_format="base64")
    err = assert_error(status, body, 400)
    assert "2048" in err["message"], "the message should state the limit"
    assert "--max-inputs-per-request" in err["message"], "the message should name the flag that raises the limit"
    status, _, body = embed_request(server, input=["x"] * 2048, encoding_format="base64")
    assert status == 200 and len(body["data"]) == 2048


@pytest.mark.parametrize("dims", [0, -1, HIDDEN + 1, 10**6, 2**63, 2**64 - 1, -(2**63)])
def test_dimensions_out_of_range_is_400(server, dims):
    for path, body in (("/v1/embeddings", {"model": MODEL_NAME, "input": "a", "dimensions": dims}),
                       ("/embed", {"inputs": "a", "dimensions": dims})):
        status, _, parsed = server.post_json(path, body)
        assert status == 400, (path, parsed)
        message = parsed["error"]["message"] if path == "/v1/embeddings" else parsed["error"]
        # The range and the value as sent, even past 64-bit integers (once "must be an integer, got integer").
        assert f"between 1 and {HIDDEN}" in message and str(dims) in message, (path, message)


@pytest.mark.parametrize("ids", [
    [VOCAB_SIZE],          # one past the embedding table
    [151668],              # a real tokenizer id (<|im_end|>-range special) past this model's table
    [10**9],
    [-1],
    [1, 2, 2**31],         # past int32
    [2**64],               # past any machine integer
])
def test_token_ids_outside_vocabulary_are_400(server, ids):
    for value in (ids, [[5, 6], ids]):
        status, _, body = embed_request(server, input=value)
        assert_error(status, body, 400, raw_hint=repr(value))
    status, _, body = embed_request(server, input=[VOCAB_SIZE - 1])
    assert status == 200, "the last row of the table is a valid id"


def test_text_whose_tokens_are_past_the_embedding_table_is_400_naming_the_token(server):
    # The real tokenizer turns "<think>" into 151667, past this model's 151665-row table: the text pipeline
    # refuses it before it is queued (it would otherwise fail the engine batch it rides in).
    status, _, body = embed_request(server, input=["fine", "so <think>hmm</think>"])
    err = assert_error(status, body, 400)
    assert err["param"] == "input" and "input[1]" in err["message"] and "<think>" in err["message"], err


def test_over_long_input_is_400_unless_truncate(server):
    long_text = " ".join(f"word{i}" for i in range(4 * CONTEXT_LENGTH))
    status, _, body = embed_request(server, input=long_text)
    assert_error(status, body, 400)
    status, _, body = embed_request(server, input=["short", long_text])
    assert_error(status, body, 400)
    status, _, body = embed_request(server, input=list(range(1, CONTEXT_LENGTH + 2)))
    assert_error(status, body, 400)
    status, _, body = embed_request(server, input=list(range(1, CONTEXT_LENGTH + 1)), encoding_format="float")
    assert status == 200, f"exactly --context-length tokens is allowed: {body}"
    status, _, body = embed_request(server, input=[long_text, "short"], truncate=True, encoding_format="float")
    assert status == 200, body
    assert len(body["data"]) == 2
    _, _, short = server.post_json("/tokenize", {"model": MODEL_NAME, "prompt": "short"})
    assert body["usage"]["prompt_tokens"] == CONTEXT_LENGTH + short["count"], "truncated to --context-length"


@pytest.mark.parametrize("body", [
    b'{"model": "tiny-qwen3-embedding", "input": "bad \xff byte"}',
    b'{"model": "tiny-qwen3-embedding", "input": ["ok", "overlong \xc0\xaf slash"]}',
    b'{"model": "tiny-qwen3-embedding", "input": "cut \xe4\xb8"}',
    b'{"model": "tiny-qwen3-embedding", "input": "surrogate \xed\xa0\x80 bytes"}',
    b'{"model": "tiny-qwen3-embedding", "input": "lone surrogate escape \\ud800"}',
])
def test_invalid_utf8_is_400(server, body):
    status, parsed = post_raw(server, body)
    assert_error(status, parsed, 400, raw_hint=repr(body))


def test_unknown_route_is_404(server):
    for method, path in [("GET", "/nope"), ("POST", "/v1/embedding"), ("GET", "/v1/models/x/y/z")]:
        status, _, raw = server.request(method, path, b"{}" if method == "POST" else None)
        assert_error(status, raw, 404, raw_hint=f"{method} {path}")


@pytest.mark.parametrize("name", ["Qwen/Qwen3-Embedding-0.6B", "other-model"])
def test_any_model_name_means_the_served_model_as_in_sglang(server, name):
    # The README's own curl names the hub id while the server may serve a local directory of another name.
    status, _, body = server.post_json(EMBED, {"model": name, "input": "a"})
    assert status == 200, body
    assert body["model"] == MODEL_NAME, "the answer names the model that computed it"
    status, _, body = server.post_json("/tokenize", {"model": name, "prompt": "a"})
    assert status == 200, body


def test_unknown_model_is_404_with_strict_model_name(start_server):
    srv = start_server("--strict-model-name")
    status, _, body = srv.post_json(EMBED, {"model": "other-model", "input": "a"})
    err = assert_error(status, body, 404)
    assert "other-model" in err["message"]
    status, _, body = srv.post_json(EMBED, {"model": MODEL_NAME, "input": "a"})
    assert status == 200


@pytest.mark.parametrize("method,path", [
    ("GET", "/v1/embeddings"), ("PUT", "/v1/embeddings"), ("DELETE", "/health"), ("POST", "/v1/models"),
    ("GET", "/embed"),
])
def test_wrong_method_is_405(server, method, path):
    status, _, raw = server.request(method, path, b"{}" if method in ("PUT", "POST") else None)
    assert_error(status, raw, 405, raw_hint=f"{method} {path}")


def test_huge_header_is_refused_and_server_survives(server):
    status, _, _ = server.request("GET", "/health", headers={"X-Big": "a" * 200_000})
    assert status in (400, 431), f"an oversized header must be refused, got {status}"
    assert server.request("GET", "/health")[0] == 200


def test_server_still_healthy_after_bad_input(server):
    assert server.alive()
    status, _, body = server.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": "still fine"})
    assert status == 200 and len(body["data"]) == 1
