"""Limits set by flags, each on its own server: API key, inputs per request, body size, a full queue."""
import asyncio
import json
import select
import socket
import time

import aiohttp
import openai
import pytest

from helpers import MODEL_NAME, assert_error, raw_http
from server_process import ServerProcess


def test_api_key_required(start_server):
    srv = start_server("--api-key", "s3cret")
    payload = {"model": MODEL_NAME, "input": "hello"}
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"},
                    {"Authorization": "Bearer s3cret-and-more"}, {"Authorization": "Basic czNjcmV0"}):
        status, _, body = srv.post_json("/v1/embeddings", payload, headers=headers)
        assert_error(status, body, 401, raw_hint=repr(headers))
    status, _, body = srv.post_json("/v1/embeddings", payload, headers={"Authorization": "Bearer s3cret"})
    assert status == 200, body
    # The official client sends the key as a bearer token.
    good = openai.OpenAI(base_url=srv.base_url + "/v1", api_key="s3cret", max_retries=0)
    assert len(good.embeddings.create(model=MODEL_NAME, input="hi").data) == 1
    bad = openai.OpenAI(base_url=srv.base_url + "/v1", api_key="nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.embeddings.create(model=MODEL_NAME, input="hi")


def test_lower_max_inputs_per_request(start_server):
    srv = start_server("--max-inputs-per-request", "4")
    status, _, body = srv.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": ["a"] * 4})
    assert status == 200 and len(body["data"]) == 4
    for value in (["a"] * 5, [[1, 2]] * 5):
        status, _, body = srv.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": value})
        err = assert_error(status, body, 400)
        assert "4" in err["message"]
    status, _, body = srv.post_json("/embed", {"inputs": ["a"] * 5})
    assert status == 413 and body["error_type"] == "Validation", body  # TEI's batch size error


def test_body_over_limit_is_413(start_server):
    srv = start_server("--max-body-bytes", "4096")
    status, _, body = srv.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": "x" * 3000})
    assert status == 200, body
    try:
        status, _, raw = srv.request("POST", "/v1/embeddings",
                                     json.dumps({"model": MODEL_NAME, "input": "x" * 10_000}).encode(),
                                     {"Content-Type": "application/json"})
    except ConnectionError as e:  # the server may close once it has answered, before we finish sending
        pytest.fail(f"the server must answer 413 before closing, got {e!r}")
    assert_error(status, raw, 413)
    assert srv.request("GET", "/health")[0] == 200


def test_full_queue_answers_429_or_503_with_retry_after(start_server):
    srv = start_server("--max-queue", "1")
    url = srv.base_url + "/v1/embeddings"
    texts = [f"text number {i} with a few more words to embed" for i in range(2048)]

    async def one(session):
        async with session.post(url, json={"model": MODEL_NAME, "input": texts}) as resp:
            return resp.status, resp.headers.get("Retry-After"), await resp.json()

    async def flood():
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=240),
                                         connector=aiohttp.TCPConnector(limit=0)) as session:
            return await asyncio.gather(*(one(session) for _ in range(32)))

    results = asyncio.run(flood())
    statuses = [s for s, _, _ in results]
    refused = [(s, ra, b) for s, ra, b in results if s in (429, 503)]
    assert set(statuses) <= {200, 429, 503}, f"only success or back-pressure expected: {statuses}"
    assert refused, f"32 concurrent 2048-input requests against --max-queue 1 must meet back-pressure: {statuses}"
    assert statuses.count(200) >= 1, "the queue still serves what it admitted"
    for status, retry_after, body in refused:
        assert retry_after is not None and retry_after.isdigit() and int(retry_after) >= 1, retry_after
        assert_error(status, body, status)
    for status, _, body in results:
        if status == 200:
            assert len(body["data"]) == 2048
    # Back-pressure is not a failure: once the flood is over the server serves again.
    status, _, body = srv.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": "after the flood"})
    assert status == 200


def _slow_upload(port: int, length: int) -> socket.socket:
    """Opens a connection that announces a `length`-byte JSON body and sends only its header."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall((f"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {length}\r\n\r\n").encode())
    return s


def _json_body(length: int) -> bytes:
    """A valid embedding request padded with whitespace to exactly `length` bytes (cheap to parse)."""
    head = json.dumps({"model": MODEL_NAME, "input": "held"}).encode()
    return head + b" " * (length - len(head))


def _status_of(s: socket.socket) -> int:
    line = s.makefile("rb").readline()
    return int(line.split()[1])


def test_body_bytes_in_flight_are_capped_across_connections(start_server):
    # The attack: many connections each announce a large body and withhold its last byte. With a
    # 2 MiB budget, two 1 MiB bodies are admitted and every other one is refused at once, before it is read.
    mib = 1 << 20
    srv = start_server("--max-body-bytes-in-flight", str(2 * mib), "--max-body-bytes", str(4 * mib))
    socks = [_slow_upload(srv.port, mib) for _ in range(8)]
    refused, waiting = [], list(socks)
    deadline = time.monotonic() + 10
    while len(refused) < 6 and time.monotonic() < deadline:
        ready, _, _ = select.select(waiting, [], [], 0.1)
        for s in ready:
            waiting.remove(s)
            refused.append(s)
    assert len(refused) == 6 and len(waiting) == 2, f"{len(refused)} refused, {len(waiting)} still reading"
    for s in refused:
        raw = s.recv(65536)
        assert raw.startswith(b"HTTP/1.1 503 "), raw[:300]
        assert b"Retry-After: 1" in raw and b"--max-body-bytes-in-flight" in raw, raw[:600]
        s.close()
    # The admitted bodies are still served, and once answered their bytes free the budget for others.
    for s in waiting:
        s.sendall(_json_body(mib))
        assert _status_of(s) == 200
        s.close()
    status, _, body = srv.request("POST", "/v1/embeddings", _json_body(mib), {"Content-Type": "application/json"})
    assert status == 200, body[:300]


def test_connections_past_the_cap_get_503_and_a_place_frees_when_one_closes(start_server):
    srv = start_server("--max-connections", "3")

    def keep_alive_connection():
        # Retried: the start-up health checks' connections may still hold a place for a moment.
        for _ in range(100):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            if s.recv(65536).startswith(b"HTTP/1.1 200 "):
                return s
            s.close()
            time.sleep(0.05)
        raise AssertionError("no place for a connection at all")

    held = [keep_alive_connection() for _ in range(3)]
    statuses, raw, closed = raw_http(srv.port, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert statuses == [503] and closed, raw[:600]
    assert b"Retry-After: 1" in raw and b"--max-connections" in raw, raw[:600]
    held.pop().close()
    deadline = time.monotonic() + 5
    while True:  # the server notices the close asynchronously
        statuses, raw, _ = raw_http(srv.port, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        if statuses == [200] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert statuses == [200], raw[:600]
    for s in held:
        s.close()


def test_headers_not_finished_in_time_get_408_but_an_idle_connection_is_kept(start_server):
    srv = start_server("--header-timeout", "0.5")
    idle = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    t0 = time.monotonic()
    statuses, raw, closed = raw_http(srv.port, b"POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nContent-Ty", timeout=5)
    assert statuses == [408] and closed, raw[:600]
    assert b"--header-timeout" in raw
    assert time.monotonic() - t0 < 3
    # The clock starts at a request's first byte: a keep-alive connection that sent nothing is still served.
    idle.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _status_of(idle) == 200
    idle.close()


def test_at_the_descriptor_limit_new_clients_get_503_instead_of_hanging(binary, tiny_model, tmp_path):
    # With 256 descriptors the default cap is 256 - 64 = 192 connections. Before it existed, accept() failed
    # at the limit and every client past it waited in the backlog, unanswered, while the others stayed open.
    wrapper = tmp_path / "embedserve-256-files"
    wrapper.write_text(f'#!/bin/sh\nulimit -n 256 && exec "{binary}" "$@"\n')
    wrapper.chmod(0o755)
    srv = ServerProcess(wrapper, tiny_model).start()
    try:
        socks = [socket.create_connection(("127.0.0.1", srv.port), timeout=10) for _ in range(300)]
        for s in socks:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        statuses = {}
        for i in reversed(range(len(socks))):  # the last clients first, while the first ones stay open
            socks[i].settimeout(5)
            try:
                statuses[i] = _status_of(socks[i])
            except (socket.timeout, ValueError, IndexError):
                statuses[i] = None
        for s in socks:
            s.close()
        counts = {st: list(statuses.values()).count(st) for st in set(statuses.values())}
        assert set(counts) == {200, 503}, counts
        assert counts[200] <= 192 and counts[503] >= 300 - 192, counts
        assert srv.request("GET", "/health")[0] == 200
    finally:
        assert srv.stop() == 0
