"""Connections: keep-alive, a thousand at once, and clients that vanish mid-request without disturbing others."""
import asyncio
import http.client
import json
import socket
import threading

import numpy as np

from helpers import HIDDEN, MODEL_NAME, vectors


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
