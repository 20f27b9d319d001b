"""Connections: keep-alive, a thousand at once, and clients that vanish mid-request without disturbing others."""
import asyncio
import http.client
import json
import signal
import socket
import threading
import time

import numpy as np

from helpers import HIDDEN, MODEL_NAME, parse_prometheus, vectors
from wrk_load import run_wrk


def test_keep_alive_serves_many_requests_on_one_connection(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    body = json.dumps({"model": MODEL_NAME, "input": "keep me alive", "encoding_format": "float"})
    first = None
    for _ in range(20):
        conn.request("POST", "/v1/embeddings", body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200
        assert (resp.getheader("Connection") or "").lower() != "close"
        vec = json.loads(resp.read())["data"][0]["embedding"]
        first = first or vec
        assert vec == first
    conn.close()


def test_a_thousand_concurrent_connections(server):
    """Sessions are asynchronous, so a thousand open connections need no thousand threads and all get answers."""
    n = 1000
    body = json.dumps({"model": MODEL_NAME, "input": "many connections"}).encode()
    request = (f"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body

    async def run():
        conns = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(n)]
        for _, w in conns:  # all connected before any request: the server holds n idle sessions at once
            w.write(request)
        statuses = []
        for r, w in conns:
            status_line = await asyncio.wait_for(r.readline(), 60)
            statuses.append(int(status_line.split()[1]))
            w.close()
        return statuses

    statuses = asyncio.run(run())
    assert statuses == [200] * n, {s: statuses.count(s) for s in set(statuses)}


def test_client_that_disconnects_does_not_disturb_others(server):
    reference = {"model": MODEL_NAME, "input": ["bystander one", "bystander two"], "encoding_format": "float"}
    status, _, body = server.post_json("/v1/embeddings", reference)
    expect = vectors(body)
    abandoned = [f"abandoned request text {i} with enough words to cost some compute" for i in range(2048)]
    body_bytes = json.dumps({"model": MODEL_NAME, "input": abandoned}).encode()

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
        assert np.array_equal(got, expect)
    assert server.alive() and server.request("GET", "/health")[0] == 200


def test_sigterm_right_after_clients_left_mid_request(start_server):
    """wrk stops with requests in flight and closes its keep-alive connections. Those requests must still be
    finished or dropped, so a SIGTERM that follows at once exits 0 promptly. Racy by nature: three tries."""
    body = {"model": MODEL_NAME, "encoding_format": "base64",
            "input": [[1000 + (7 * i + k) % 50000 for k in range(32)] for i in range(128)]}
    for attempt in range(3):
        srv = start_server()
        result = run_wrk(srv.base_url, [("/v1/embeddings", body)], seconds=2, connections=4)
        assert result["requests"] > 0 and result["non2xx"] == 0, result["wrk_output"]
        samples, _ = parse_prometheus(srv.request("GET", "/metrics")[2].decode())
        abandoned = samples[("embedserve_requests_in_flight", ())] - 1  # less the /metrics request itself
        t0 = time.monotonic()
        code = srv.stop(signal.SIGTERM, timeout=30)  # raises if it does not exit
        assert code == 0, srv.log()[-2000:]
        print(f"\nattempt {attempt}: {abandoned:.0f} requests of departed clients in flight at SIGTERM; "
              f"exit 0 after {time.monotonic() - t0:.2f} s")
