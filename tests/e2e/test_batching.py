"""Batching must not change answers: a text's vector alone equals its vector in any batch, in any order."""
import asyncio
import random

import aiohttp
import numpy as np

from helpers import HIDDEN, MODEL_NAME, embed_one, vectors

# The engine's contract (src/engine/engine.h, docs/ARCHITECTURE.md "Batch invariance is bitwise"): a sequence's
# vector depends on that sequence alone, bit for bit, whatever it is batched with.


def short_texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = "alpha beta gamma delta river stone cloud 北京 données ñandú search query vector".split()
    return [" ".join(rng.choice(words) for _ in range(rng.randint(1, 12))) + f" #{seed}-{i}" for i in range(n)]


def test_same_vector_alone_and_in_mixed_batches(server):
    target = "the text whose vector must not depend on its neighbours"
    alone = embed_one(server, target)
    others = short_texts(40, seed=3) + [" ".join(["long"] * 50)]
    for position in (0, 7, len(others)):
        batch = others[:position] + [target] + others[position:]
        status, _, body = server.post_json("/v1/embeddings",
                                           {"model": MODEL_NAME, "input": batch, "encoding_format": "float"})
        assert status == 200
        got = vectors(body)
        assert got.shape == (len(batch), HIDDEN)
        assert np.array_equal(got[position], alone), \
            f"position {position}: max difference {np.abs(got[position] - alone).max()}"


async def post(session, url, payload):
    async with session.post(url, json=payload) as resp:
        return resp.status, await resp.json()


def test_seed_pattern_16_concurrent_requests_of_2048_inputs(server):
    """The seed's aiohttp pattern: 16 requests of 2,048 short texts each in flight at once, all answered in order."""
    url = server.base_url + "/v1/embeddings"
    requests = [short_texts(2048, seed=100 + r) for r in range(16)]

    async def run():
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=240)) as session:
            return await asyncio.gather(*(post(session, url, {"model": MODEL_NAME, "input": texts,
                                                              "encoding_format": "float"})
                                          for texts in requests))

    results = asyncio.run(run())
    rng = random.Random(7)
    for texts, (status, body) in zip(requests, results):
        assert status == 200, body
        got = vectors(body)  # checks data[i].index == i
        assert got.shape == (2048, HIDDEN)
        for i in rng.sample(range(2048), 3) + [0, 2047]:
            assert np.array_equal(got[i], embed_one(server, texts[i])), \
                f"input {i} of a 2048-input request is not text {i}'s vector"
    # The 16 requests hold different texts, so their first vectors differ: answers were not crossed.
    firsts = np.array([vectors(body)[0] for _, body in results])
    assert len({tuple(np.round(v, 5)) for v in firsts}) == 16
