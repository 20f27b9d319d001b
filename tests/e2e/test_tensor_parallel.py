"""`serve --tp 2 --device cpu`: the model split over two rank threads answers like the unsplit one, says so at start-up
and in /info, and a split the model's heads do not allow is refused in one line naming the ones that do."""
import json
import subprocess

import numpy as np

from helpers import MODEL_NAME, vectors

TEXTS = ["hello", "tensor parallelism splits every layer's heads between ranks", "数据并行 and 张量并行", "x" * 300]


def embed_all(srv) -> np.ndarray:
    status, _, body = srv.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": TEXTS})
    assert status == 200, body
    return vectors(body)


def test_two_ranks_serve_the_vectors_of_one(start_server):
    one = start_server("--tp", "1")
    two = start_server("--tp-size", "2")  # SGLang's spelling
    a, b = embed_all(one), embed_all(two)
    cosines = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    # The CPU's default mode rounds GEMM inputs to bf16 where the CPU has AVX512-BF16, and the split sums o_proj's and
    # down_proj's columns in another order: a flipped rounding moves a cosine by ~1e-5; a wrong slice by ~1e-1.
    assert cosines.min() >= 0.9999, cosines
    log = two.log()
    assert "tensor parallel over 2 ranks" in log and "rank 1" in log, log
    status, _, info = two.request("GET", "/info")
    assert status == 200 and "tensor parallel over 2 ranks" in json.loads(info)["backend"]
    # An input longer than half the batch budget goes in chunks, each rank keeping its heads' keys and values.
    chunked = start_server("--tp", "2", "--chunked-prefill-size", "64", "--max-num-batched-tokens", "64")
    long_text = "parallel " * 150
    c, d = [vectors(srv.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": long_text})[2])[0]
            for srv in (one, chunked)]
    assert float(np.dot(c, d) / (np.linalg.norm(c) * np.linalg.norm(d))) >= 0.9999


def test_a_split_the_heads_do_not_allow_is_refused_in_one_line(binary, tiny_model):
    # The tiny model has 4 attention heads and 2 key/value heads: 1 or 2 ranks.
    proc = subprocess.run([str(binary), "serve", "--model-path", str(tiny_model), "--port", "0", "--device", "cpu",
                           "--tensor-parallel-size", "3"], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    refusal = [line for line in proc.stderr.splitlines() if "--tp 3" in line]
    assert len(refusal) == 1 and "2 key/value heads" in refusal[0] and "use --tp 1, 2" in refusal[0], proc.stderr
    proc = subprocess.run([str(binary), "embed", "--model-path", str(tiny_model), "--input", "-", "--output", "-",
                           "--device", "cpu", "--tp", "4"], input='{"text": "a"}\n', capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0 and "use --tp 1, 2" in proc.stderr, proc.stderr
