"""--dp on the CPU with the tiny model: replicas give the same bits as one engine; an injected engine failure
(EMBEDSERVE_INJECT_ENGINE_FAILURE) degrades /health and /metrics while every request still succeeds, and losing
the last replica answers 503 and ends the process with a non-zero status.

The same scenarios run on GPUs without pytest (bench/cuda/run_dp.sh), one replica per GPU:
    python3 tests/e2e/test_replicas.py --bin build/embedserve --model DIR --device cuda
"""
from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from helpers import MODEL_NAME, assert_error, parse_prometheus
from server_process import ServerProcess

TEXTS = [f"replica test text {i} " + "word " * (i % 13) for i in range(48)]


def embed_base64(srv: ServerProcess, texts: list[str]) -> tuple[int, dict | None]:
    status, _, body = srv.post_json("/v1/embeddings",
                                    {"model": MODEL_NAME, "input": texts, "encoding_format": "base64"})
    return status, body


def raw_vectors(body: dict) -> list[bytes]:
    """The vectors' exact bytes (base64 carries the f32 bits unrounded)."""
    return [base64.b64decode(d["embedding"]) for d in body["data"]]


def metrics(srv: ServerProcess) -> dict:
    status, _, raw = srv.request("GET", "/metrics")
    assert status == 200
    samples, _ = parse_prometheus(raw.decode())
    return samples


def replica_device(device: str, replica: int) -> str:
    """The device label of a replica: "cpu", or replica r's GPU from --base-gpu-id 0."""
    return "cpu" if device == "cpu" else f"cuda:{replica}"


def replica_sample(samples: dict, name: str, replica: int, device: str = "cpu") -> float:
    return samples[(name, (("device", replica_device(device, replica)), ("replica", str(replica))))]


def two_replicas_give_the_bits_of_one(binary, model, device="cpu"):
    # Each replica of --dp 2 --threads 2 computes on one thread, as --dp 1 --threads 1 does (on the CPU).
    one = ServerProcess(binary, model, "--threads", "1", "--device", device).start()
    two = ServerProcess(binary, model, "--dp", "2", "--threads", "2", "--device", device).start()
    try:
        ready = next(line for line in two.log().splitlines() if "ready in" in line)
        assert f"2 replicas: 0: {replica_device(device, 0)}" in ready, ready
        assert f"; 1: {replica_device(device, 1)}" in ready, ready
        expected = {}
        for text in TEXTS:
            status, body = embed_base64(one, [text])
            assert status == 200, body
            expected[text] = raw_vectors(body)[0]
        # Concurrent requests, so both replicas take batches.
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda t: (t, embed_base64(two, [t])), TEXTS * 2))
        for text, (status, body) in results:
            assert status == 200, body
            assert raw_vectors(body)[0] == expected[text], f"--dp 2 gave other bits for {text!r}"
        samples = metrics(two)
        assert samples[("embedserve_replicas_up", ())] == 2
        batches = [replica_sample(samples, "embedserve_replica_batches_total", r, device) for r in (0, 1)]
        assert all(b > 0 for b in batches), f"both replicas should have run batches: {batches}"
        status, _, raw = two.request("GET", "/health")
        assert status == 200 and raw == b'{"status":"healthy"}', raw
    finally:
        assert one.stop() == 0
        assert two.stop() == 0


def a_failed_replica_degrades_the_server_and_the_last_one_ends_it(binary, model, device="cpu"):
    # Replica 0 fails its 3rd engine call, replica 1 its 150th (an engine call here takes about a millisecond).
    env = {**os.environ, "EMBEDSERVE_INJECT_ENGINE_FAILURE": "0:3,1:150"}
    srv = ServerProcess(binary, model, "--dp", "2", "--threads", "2", "--device", device, env=env).start()
    assert "engine replica 0 fails its engine call 3" in srv.log()
    try:
        # Until replica 0 has failed: every request still succeeds (its batch is retried on replica 1).
        with ThreadPoolExecutor(4) as pool:
            for _ in range(20):
                for status, body in pool.map(lambda t: embed_base64(srv, [t]), TEXTS[:4]):
                    assert status == 200, body
                if metrics(srv)[("embedserve_replicas_up", ())] == 1:
                    break
        status, _, raw = srv.request("GET", "/health")
        health = json.loads(raw)
        assert status == 200 and health["status"] == "degraded", raw
        assert health["replicas"]["up"] == 1 and health["replicas"]["total"] == 2
        assert [f["replica"] for f in health["replicas"]["failed"]] == [0]
        assert "injected failure of engine replica 0" in health["replicas"]["failed"][0]["fault"]
        samples = metrics(srv)
        assert replica_sample(samples, "embedserve_replica_up", 0, device) == 0
        assert replica_sample(samples, "embedserve_replica_up", 1, device) == 1
        status, _, raw = srv.request("GET", "/info")
        info = json.loads(raw)
        assert info["data_parallel_size"] == 2
        assert [r["up"] for r in info["replicas"]] == [False, True]
        assert "engine replica 0 failed and left the rotation" in srv.log()

        # Replica 1 serves alone until its own failure; then requests get 503 and the process exits non-zero.
        failure = None
        for _ in range(200):
            try:
                status, body = embed_base64(srv, [TEXTS[5]])
            except OSError:
                break  # the server has closed its listener
            if status != 200:
                failure = (status, body)
                break
            assert np.all(np.isfinite(np.frombuffer(raw_vectors(body)[0], dtype=np.float32)))
        assert failure is not None, "replica 1 should have failed within 200 requests"
        err = assert_error(failure[0], failure[1], 503)
        assert "every engine replica has failed" in err["message"]
        srv.proc.wait(timeout=30)
        assert srv.proc.returncode == 1, srv.log()[-3000:]
        assert "every engine replica had failed" in srv.log()
    finally:
        if srv.alive():
            srv.stop()


def test_an_injected_failure_for_a_replica_that_does_not_exist_is_refused(binary, tiny_model):
    env = {**os.environ, "EMBEDSERVE_INJECT_ENGINE_FAILURE": "2:1"}
    result = subprocess.run([str(binary), "serve", "--model-path", str(tiny_model), "--device", "cpu", "--port", "0",
                             "--dp", "2"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "names replica 2, but --dp 2 starts replicas 0 to 1" in result.stderr, result.stderr


def test_two_replicas_give_the_bits_of_one(binary, tiny_model):
    two_replicas_give_the_bits_of_one(binary, tiny_model)


def test_a_failed_replica_degrades_the_server_and_the_last_one_ends_it(binary, tiny_model):
    a_failed_replica_degrades_the_server_and_the_last_one_ends_it(binary, tiny_model)


if __name__ == "__main__":
    import argparse
    import pathlib

    ap = argparse.ArgumentParser(description="the --dp scenarios outside pytest (e.g. one replica per GPU)")
    ap.add_argument("--bin", required=True, type=pathlib.Path)
    ap.add_argument("--model", required=True, type=pathlib.Path)
    ap.add_argument("--device", default="cuda")
    a = ap.parse_args()
    two_replicas_give_the_bits_of_one(a.bin, a.model, a.device)
    print(f"dp 2 on {a.device}: the bits of dp 1 for {len(TEXTS)} texts, both replicas used: OK")
    a_failed_replica_degrades_the_server_and_the_last_one_ends_it(a.bin, a.model, a.device)
    print(f"dp 2 on {a.device}: injected failure of replica 0 retried, /health degraded, /metrics and /info "
          "report it; the last replica's failure answered 503 and exited 1: OK")
