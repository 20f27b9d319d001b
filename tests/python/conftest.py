"""Fixtures for the Python package's tests: a tiny random model, an Engine on it, the installed command.

These tests exercise an installed embedserve (scripts/test_wheel.sh installs the wheel into a fresh venv outside
the source tree and runs them with that venv's python), so `import embedserve` and the `embedserve` script next to
the interpreter are what a user gets from `pip install`.
"""
from __future__ import annotations

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
HIDDEN = 32  # the tiny model's hidden size (tests/e2e/server_process.py's TINY_MODEL)
TINY_MODEL = dict(hidden=HIDDEN, layers=2, heads=4, kv_heads=2, head_dim=16, intermediate=64, dtype="bf16",
                  vocab_size=151665, max_position=128)


def make_model(out_dir: pathlib.Path, seed: int = 1) -> pathlib.Path:
    """A random-weight Qwen3 embedding model (tools/make_random_model.py, numpy only) with the real tokenizer."""
    cmd = [sys.executable, str(ROOT / "tools" / "make_random_model.py"), "--out", str(out_dir), "--seed", str(seed)]
    for key, value in TINY_MODEL.items():
        cmd += [f"--{key.replace('_', '-')}", str(value)]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return out_dir


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> pathlib.Path:
    return make_model(tmp_path_factory.mktemp("models") / "tiny-qwen3-embedding")


@pytest.fixture(scope="session")
def command() -> pathlib.Path:
    """The `embedserve` script pip installed beside this interpreter."""
    path = pathlib.Path(sys.executable).parent / "embedserve"
    assert path.is_file(), f"no embedserve command at {path}: run these tests with the venv the wheel went into"
    return path


@pytest.fixture(scope="session")
def engine(tiny_model):
    import embedserve

    return embedserve.Engine(tiny_model, device="cpu", max_num_batched_tokens=256)
