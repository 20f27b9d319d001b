"""Fixtures for the end-to-end tests: the binary, a tiny random model, and embedserve servers on free ports."""
from __future__ import annotations

import pathlib
import resource
import signal

import openai
import pytest

from helpers import CONTEXT_LENGTH, MODEL_NAME
from server_process import ServerProcess, find_binary, make_model


@pytest.fixture(scope="session", autouse=True)
def open_file_limit():
    """Raises the soft limit on open files (servers inherit it): a thousand-connection test needs ~2,000."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = 8192 if hard == resource.RLIM_INFINITY else min(hard, 8192)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


@pytest.fixture(scope="session")
def binary() -> pathlib.Path:
    return find_binary()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> pathlib.Path:
    return make_model(tmp_path_factory.mktemp("models") / MODEL_NAME, seed=1)


@pytest.fixture(scope="session")
def server(binary, tiny_model):
    """The shared server most tests talk to; stopped with SIGTERM at the end, which must exit 0."""
    srv = ServerProcess(binary, tiny_model, "--context-length", str(CONTEXT_LENGTH)).start()
    yield srv
    assert srv.alive(), f"shared server died during the tests:\n{srv.log()}"
    code = srv.stop(signal.SIGTERM)
    assert code == 0, f"SIGTERM exit code {code}:\n{srv.log()[-4000:]}"


@pytest.fixture
def start_server(binary, tiny_model):
    """Factory for servers with their own flags; each must still exit 0 on SIGTERM at teardown."""
    started: list[ServerProcess] = []

    def start(*args: str, model_dir: pathlib.Path | None = None) -> ServerProcess:
        srv = ServerProcess(binary, model_dir or tiny_model, *args).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        if srv.alive():
            code = srv.stop(signal.SIGTERM)
            assert code == 0, f"SIGTERM exit code {code}:\n{srv.log()[-4000:]}"


@pytest.fixture
def client(server) -> openai.OpenAI:
    # No retries: a 429 or 5xx must surface in the test, not be papered over by the client.
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="unused", max_retries=0, timeout=60)
