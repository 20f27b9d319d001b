"""SIGTERM under load finishes in-flight work and exits 0; clients that vanish do not disturb the others."""
import asyncio
import json
import signal
import socket
import threading
import time

import aiohttp
import numpy as np

from helpers import HIDDEN, MODEL_NAME, vectors

EXIT_BOUND_S = 30


def big_request(n: int, tag: str) -> dict:
    return {"model": MODEL_NAME, "encoding_format": "base64",
            "input": [f"{tag} request text {i} with enough words to cost some compute each time" for i in range(n)]}


def connect_refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


def test_sigterm_under_load_finishes_in_flight_and_exits_0(start_server):
    srv = start_server()
    url = srv.base_url + "/v1/embeddings"
    n_requests, n_inputs = 12, 2048

    async def scenario():
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120),
                                         connector=aiohttp.TCPConnector(limit=0)) as session:
            async def one(i):
                async with session.post(url, json=big_request(n_inputs, f"r{i}")) as resp:
                    body = await resp.json()
                    return resp.status, body, time.monotonic()

            tasks = [asyncio.create_task(one(i)) for i in range(n_requests)]
            await asyncio.sleep(0.5)  # all requests sent and queued
            assert not any(t.done() for t in tasks), "the load must still be in flight when SIGTERM arrives"
            srv.proc.send_signal(signal.SIGTERM)
            t_term = time.monotonic()
            # New connections must be refused while the old ones are still being served.
            refused_at = None
            while not all(t.done() for t in tasks):
                if await asyncio.to_thread(connect_refused, srv.port):
                    refused_at = time.monotonic()
                    break
                await asyncio.sleep(0.05)
            results = await asyncio.gather(*tasks)
            return t_term, refused_at, results

    t_term, refused_at, results = asyncio.run(scenario())
    for status, body, _ in results:
        assert status == 200, f"in-flight request failed during shutdown: {status} {body}"
        assert len(body["data"]) == n_inputs
    last_done = max(done for _, _, done in results)
    assert refused_at is not None and refused_at < last_done, \
        "after SIGTERM the listener must close before the in-flight work is done"
    srv.proc.wait(EXIT_BOUND_S)
    assert srv.proc.returncode == 0, srv.log()[-4000:]
    print(f"\nshutdown: refused new connections {refused_at - t_term:.2f} s after SIGTERM, last in-flight "
          f"answer at {last_done - t_term:.2f} s")


def test_client_that_disconnects_does_not_disturb_others(server):
    reference = {"model": MODEL_NAME, "input": ["bystander one", "bystander two"], "encoding_format": "float"}
    status, _, body = server.post_json("/v1/embeddings", reference)
    expect = vectors(body)
    body_bytes = json.dumps(big_request(2048, "abandoned")).encode()

    def abandon(send_all: bool):
        s = socket.create_connection(("127.0.0.1", server.port))
        head = (f"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body_bytes)}\r\n\r\n").encode()
        s.sendall(head + (body_bytes if send_all else body_bytes[: len(body_bytes) // 2]))
        s.close()

    results = []

    def bystander():
        for _ in range(10):
            st, _, b = server.post_json("/v1/embeddings", reference)
            results.append((st, vectors(b) if st == 200 else b))

    t = threading.Thread(target=bystander)
    t.start()
    for i in range(20):
        abandon(send_all=i % 2 == 0)
    t.join()
    assert len(results) == 10
    for st, got in results:
        assert st == 200, got
        assert got.shape == (2, HIDDEN)
        np.testing.assert_allclose(got, expect, atol=1e-6, rtol=0)
    assert server.alive() and server.request("GET", "/health")[0] == 200
