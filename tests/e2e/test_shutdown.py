"""SIGTERM under load: in-flight requests complete, new connections are refused, the process exits 0."""
import asyncio
import signal
import socket
import time

import aiohttp
import pytest

from helpers import parse_prometheus
from server_process import make_model

EXIT_BOUND_S = 30
N_REQUESTS, N_INPUTS = 12, 1024
# Wider than the shared tiny model so the in-flight work lasts a few seconds on two cores: long enough to
# observe the listener closing while answers are still owed.
MEDIUM_MODEL = dict(hidden=128, layers=2, heads=4, kv_heads=2, head_dim=32, intermediate=256)


@pytest.fixture(scope="module")
def medium_model(tmp_path_factory):
    return make_model(tmp_path_factory.mktemp("models") / "medium-qwen3-embedding", seed=3, **MEDIUM_MODEL)


def connect_refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except (ConnectionRefusedError, ConnectionResetError):  # reset: the listener closed mid-handshake
        return True


def in_flight(srv) -> float:
    status, _, raw = srv.request("GET", "/metrics", timeout=10)
    samples, _ = parse_prometheus(raw.decode())
    return samples[("embedserve_requests_in_flight", ())]


def test_sigterm_under_load_finishes_in_flight_and_exits_0(start_server, medium_model):
    srv = start_server(model_dir=medium_model)
    url = srv.base_url + "/v1/embeddings"

    async def scenario():
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120),
                                         connector=aiohttp.TCPConnector(limit=0)) as session:
            async def one(i):
                texts = [f"request {i} text {k} with enough words to cost some compute" for k in range(N_INPUTS)]
                async with session.post(url, json={"model": medium_model.name, "input": texts,
                                                   "encoding_format": "base64"}) as resp:
                    return resp.status, await resp.json(), time.monotonic()

            tasks = [asyncio.create_task(one(i)) for i in range(N_REQUESTS)]
            # SIGTERM once the server has read every request (the /metrics request itself counts too).
            deadline = time.monotonic() + 20
            while await asyncio.to_thread(in_flight, srv) < N_REQUESTS:
                assert time.monotonic() < deadline and not any(t.done() for t in tasks), \
                    "the requests must all be in flight together before SIGTERM"
                await asyncio.sleep(0.02)
            assert not any(t.done() for t in tasks), "the load must still be in flight when SIGTERM arrives"
            srv.proc.send_signal(signal.SIGTERM)
            t_term = time.monotonic()
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
        assert len(body["data"]) == N_INPUTS
    last_done = max(done for _, _, done in results)
    assert refused_at is not None and refused_at < last_done, \
        "after SIGTERM the listener must close while in-flight work is still being answered"
    srv.proc.wait(EXIT_BOUND_S)
    assert srv.proc.returncode == 0, srv.log()[-4000:]
    print(f"\nshutdown: new connections refused {refused_at - t_term:.2f} s after SIGTERM, last in-flight "
          f"answer at {last_done - t_term:.2f} s, exit 0")
