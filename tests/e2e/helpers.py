"""Helpers shared by the e2e tests: the tiny model's facts, response checks, a Prometheus text reader, raw HTTP."""
from __future__ import annotations

import json
import re
import socket
import time

import numpy as np

from server_process import ServerProcess

MODEL_NAME = "tiny-qwen3-embedding"  # the model directory's name, which is also the default served name
HIDDEN = 32                           # hidden size of the tiny model (server_process.TINY_MODEL)
VOCAB_SIZE = 151665                   # rows of its embedding table: the 4B/8B value, below the tokenizer's 151669
CONTEXT_LENGTH = 64                   # the shared server's --context-length: small, so over-long inputs are cheap


def assert_error(status: int, body, expected_status: int, raw_hint: str = "") -> dict:
    """Checks an error response has `expected_status` and OpenAI's shape; returns the inner error object.
    `body` is the parsed JSON or the raw bytes (parsed here, so a non-JSON body fails with its text shown)."""
    if isinstance(body, (bytes, bytearray)):
        try:
            body = json.loads(body)
        except ValueError:
            pass
    assert status == expected_status, f"expected HTTP {expected_status}, got {status}: {body!r} {raw_hint}"
    assert isinstance(body, dict) and set(body) == {"error"}, f"error body is not {{'error': ...}}: {body!r}"
    err = body["error"]
    assert set(err) >= {"message", "type", "param", "code"}, f"error object lacks keys: {err!r}"
    assert isinstance(err["message"], str) and err["message"], f"error message empty: {err!r}"
    assert isinstance(err["type"], str) and err["type"], f"error type empty: {err!r}"
    assert err["param"] is None or isinstance(err["param"], str), f"param must be string or null: {err!r}"
    assert err["code"] is None or isinstance(err["code"], (str, int)), f"bad code: {err!r}"
    return err


def vectors(body: dict) -> np.ndarray:
    """The float vectors of an /v1/embeddings JSON body, in index order, checked for index consistency."""
    assert body["object"] == "list"
    data = body["data"]
    assert [d["index"] for d in data] == list(range(len(data))), "data[i].index must equal i"
    assert all(d["object"] == "embedding" for d in data)
    return np.array([d["embedding"] for d in data], dtype=np.float32)


def embed_one(srv: ServerProcess, text, **extra) -> np.ndarray:
    status, _, body = srv.post_json("/v1/embeddings",
                                    {"model": MODEL_NAME, "input": text, "encoding_format": "float", **extra})
    assert status == 200, body
    return vectors(body)[0]


def parse_prometheus(text: str) -> tuple[dict[tuple[str, tuple], float], dict[str, str]]:
    """A strict reader of Prometheus text format 0.0.4: ({(name, sorted label pairs): value}, {family: type})."""
    sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$')
    label = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')
    out: dict[tuple[str, tuple], float] = {}
    types: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 4 and parts[1] == "TYPE":
                assert parts[3] in ("counter", "gauge", "histogram", "summary", "untyped"), line
                types[parts[2]] = parts[3]
            continue
        m = sample.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        labels = []
        rest = m.group(3) or ""
        pos = 0
        while pos < len(rest):
            lm = label.match(rest, pos)
            assert lm, f"bad label set in {line!r}"
            labels.append((lm.group(1), lm.group(2)))
            pos = lm.end()
        value = float(m.group(4))  # accepts NaN, +Inf, -Inf as Prometheus does
        key = (m.group(1), tuple(sorted(labels)))
        assert key not in out, f"duplicate sample {line!r}"
        out[key] = value
    return out, types



def raw_http(port: int, data: bytes, timeout: float = 5.0) -> tuple[list[int], bytes, bool]:
    """Sends raw bytes on a fresh loopback connection and reads until the server closes it or `timeout` passes.
    Returns (the status of every response seen, in order; all bytes read; whether the server closed)."""
    received = b""
    closed = False
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            received += chunk
    statuses = [int(m) for m in re.findall(rb"HTTP/1\.[01] (\d{3}) ", received)]
    return statuses, received, closed
