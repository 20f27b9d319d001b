"""/v1/embeddings driven by the official openai client: strings, lists, token ids, float and base64, dimensions."""
import base64

import numpy as np
import openai
import pytest

from helpers import HIDDEN, MODEL_NAME, embed_one

TEXTS = ["The quick brown fox jumps over the lazy dog.",
         "What is the capital of France?",
         "Qwen3 嵌入模型 🚀",
         "a",
         "Ünïcödé   with   spaces\tand\nnewlines"]


def as_array(resp) -> np.ndarray:
    assert [d.index for d in resp.data] == list(range(len(resp.data)))
    return np.array([d.embedding for d in resp.data], dtype=np.float32)


def test_single_string_float(client):
    resp = client.embeddings.create(model=MODEL_NAME, input=TEXTS[0], encoding_format="float")
    assert resp.object == "list" and resp.model == MODEL_NAME
    assert len(resp.data) == 1 and resp.data[0].object == "embedding"
    vec = as_array(resp)[0]
    assert vec.shape == (HIDDEN,)
    assert np.all(np.isfinite(vec))
    assert abs(np.linalg.norm(vec) - 1.0) < 1e-5, "Qwen3-Embedding vectors are L2-normalised"
    assert resp.usage.prompt_tokens > 0 and resp.usage.total_tokens == resp.usage.prompt_tokens


def test_list_of_strings_matches_singles(client):
    resp = client.embeddings.create(model=MODEL_NAME, input=TEXTS, encoding_format="float")
    batch = as_array(resp)
    assert batch.shape == (len(TEXTS), HIDDEN)
    singles = []
    tokens = 0
    for text in TEXTS:
        one = client.embeddings.create(model=MODEL_NAME, input=text, encoding_format="float")
        singles.append(as_array(one)[0])
        tokens += one.usage.prompt_tokens
    assert np.array_equal(batch, np.array(singles)), "batching must not change a vector (bitwise, see ARCHITECTURE)"
    assert resp.usage.prompt_tokens == tokens, "usage must add up over the inputs"
    # Different texts must give different vectors (guards against a server returning one row for all).
    assert np.linalg.norm(batch[0] - batch[1]) > 1e-3


def test_default_encoding_is_base64_and_decodes_to_the_float_vectors(client, server):
    # The client asks for base64 when encoding_format is not given and decodes it as little-endian float32:
    # a server that sent float64 or float16 would yield vectors of the wrong length here.
    default = as_array(client.embeddings.create(model=MODEL_NAME, input=TEXTS))
    floats = as_array(client.embeddings.create(model=MODEL_NAME, input=TEXTS, encoding_format="float"))
    assert default.shape == (len(TEXTS), HIDDEN)
    assert np.array_equal(default, floats), "base64 must carry exactly the float32 values of the float response"
    # The wire really is base64 of float32 [hidden]: check the raw body, not only what the client made of it.
    status, _, body = server.post_json("/v1/embeddings",
                                       {"model": MODEL_NAME, "input": TEXTS, "encoding_format": "base64"})
    assert status == 200
    for i, item in enumerate(body["data"]):
        assert isinstance(item["embedding"], str)
        raw = base64.b64decode(item["embedding"], validate=True)
        assert len(raw) == 4 * HIDDEN
        assert np.array_equal(np.frombuffer(raw, dtype="<f4"), floats[i])


def test_float_json_round_trips_float32_exactly(server):
    # Shortest round-trip formatting must give back the exact float32 the engine produced: compare to base64.
    payload = {"model": MODEL_NAME, "input": TEXTS}
    _, _, as_float = server.post_json("/v1/embeddings", {**payload, "encoding_format": "float"})
    _, _, as_b64 = server.post_json("/v1/embeddings", {**payload, "encoding_format": "base64"})
    for f, b in zip(as_float["data"], as_b64["data"]):
        exact = np.frombuffer(base64.b64decode(b["embedding"]), dtype="<f4")
        assert np.array_equal(np.array(f["embedding"], dtype=np.float32), exact)


def test_token_ids_single_and_nested(client):
    ids = [7, 1000, 151643]
    one = as_array(client.embeddings.create(model=MODEL_NAME, input=ids, encoding_format="float"))
    assert one.shape == (1, HIDDEN)
    nested = as_array(client.embeddings.create(model=MODEL_NAME, input=[ids, [42, 43], [151664]],
                                               encoding_format="float"))
    assert nested.shape == (3, HIDDEN)
    assert np.array_equal(nested[0], one[0])
    assert np.linalg.norm(nested[1] - nested[2]) > 1e-3
    resp = client.embeddings.create(model=MODEL_NAME, input=[ids, [42, 43]], encoding_format="float")
    assert resp.usage.prompt_tokens == 5, "token ids are used as given: 3 + 2 tokens"


def test_dimensions_truncate_and_renormalise(client):
    full = as_array(client.embeddings.create(model=MODEL_NAME, input=TEXTS, encoding_format="float"))
    for dims in (1, 8, 31, HIDDEN):
        for fmt in ("float", None):
            kwargs = {"encoding_format": fmt} if fmt else {}
            got = as_array(client.embeddings.create(model=MODEL_NAME, input=TEXTS, dimensions=dims, **kwargs))
            assert got.shape == (len(TEXTS), dims), f"dimensions={dims} format={fmt}"
            np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
            expect = full[:, :dims] / np.linalg.norm(full[:, :dims], axis=1, keepdims=True)
            np.testing.assert_allclose(got, expect, atol=1e-6, rtol=0)


def test_user_field_is_accepted(client):
    resp = client.embeddings.create(model=MODEL_NAME, input="hello", user="user-1234", encoding_format="float")
    assert len(resp.data) == 1


def test_unknown_model_is_not_found_with_strict_model_name(start_server):
    srv = start_server("--strict-model-name")
    client = openai.OpenAI(base_url=srv.base_url + "/v1", api_key="unused", max_retries=0, timeout=60)
    with pytest.raises(openai.NotFoundError) as info:
        client.embeddings.create(model="no-such-model", input="hello")
    assert info.value.status_code == 404
    assert "no-such-model" in str(info.value.body), "the message should name the model that was not found"


def test_any_model_name_is_served_by_default(client):
    # SGLang's behaviour: one model is served, whatever `model` says (e.g. a hub id for a local directory).
    result = client.embeddings.create(model="Qwen/Qwen3-Embedding-0.6B", input="hello")
    assert result.model == MODEL_NAME and len(result.data) == 1


def test_bad_request_surfaces_as_bad_request_error(client):
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model=MODEL_NAME, input="hello", dimensions=HIDDEN + 1)
    with pytest.raises(openai.BadRequestError):
        client.embeddings.create(model=MODEL_NAME, input=[])


def test_token_ids_equal_text_embedding(server):
    # /tokenize gives the ids the server embeds for a text (EOS included); embedding those ids as given must
    # give the text's vector.
    for text in TEXTS:
        status, _, tok = server.post_json("/tokenize", {"model": MODEL_NAME, "prompt": text})
        assert status == 200, tok
        ids = tok["tokens"]
        assert ids and all(isinstance(i, int) for i in ids)
        assert ids[-1] == 151643, "Qwen3-Embedding appends <|endoftext|> (151643)"
        assert np.array_equal(embed_one(server, ids), embed_one(server, text))
