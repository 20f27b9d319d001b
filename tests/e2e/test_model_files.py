"""Model files that must be refused at load with a message naming them: a FIFO (which once hung the load
forever), weights holding NaN or Inf (which once served `null` in the vectors), a model that does not fit in
memory (which once died of std::bad_alloc), and a served file truncated under the running server (which once
killed it with SIGBUS)."""
import json
import os
import shutil
import struct
import subprocess

import numpy as np
import pytest
from helpers import embed_one


def serve_until_exit(binary, model_dir, timeout=30) -> subprocess.CompletedProcess:
    """Runs `serve` on a model that must fail to load; a load that hangs or succeeds fails by timeout."""
    try:
        return subprocess.run([str(binary), "serve", "--model-path", str(model_dir), "--port", "0", "--device", "cpu"],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"serve did not refuse the model within {timeout} s: {e.stderr!r}")


@pytest.mark.parametrize("name", ["model.safetensors", "config.json", "tokenizer.json"])
def test_a_fifo_among_the_model_files_is_refused_naming_it(binary, tiny_model, tmp_path, name):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    (model / name).unlink()
    os.mkfifo(model / name)
    proc = serve_until_exit(binary, model)
    assert proc.returncode != 0
    assert str(model / name) in proc.stderr and "not a regular file" in proc.stderr, proc.stderr


def poison(path, tensor: str, index: int, value_bits: int):
    """Overwrites element `index` of a BF16 tensor of a safetensors file with the raw bits given."""
    with open(path, "r+b") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        entry = header[tensor]
        assert entry["dtype"] == "BF16", entry
        f.seek(8 + n + entry["data_offsets"][0] + 2 * index)
        f.write(struct.pack("<H", value_bits))


@pytest.mark.parametrize("bits,what", [(0x7FC0, "NaN"), (0xFF80, "Inf")])
def test_non_finite_weights_are_refused_naming_tensor_and_file(binary, tiny_model, tmp_path, bits, what):
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    with open(model / "model.safetensors", "rb") as f:
        names = [k for k in json.loads(f.read(struct.unpack("<Q", f.read(8))[0])) if k != "__metadata__"]
    tensor = next(n for n in names if n.endswith("layers.1.mlp.down_proj.weight"))
    poison(model / "model.safetensors", tensor, 37, bits)
    proc = serve_until_exit(binary, model)
    assert proc.returncode != 0
    assert tensor in proc.stderr and "model.safetensors" in proc.stderr and what in proc.stderr, proc.stderr


def test_vectors_that_overflow_are_a_500_naming_the_model_never_null(start_server, tiny_model, tmp_path):
    # Finite weights can still overflow: a final norm of ~3.4e38 (bf16's largest) turns the hidden state into
    # ±Inf, and normalising gives NaN, which JSON can only print as null.
    model = tmp_path / "overflowing-model"
    shutil.copytree(tiny_model, model)
    with open(model / "model.safetensors", "rb") as f:
        header = json.loads(f.read(struct.unpack("<Q", f.read(8))[0]))
    norm = next(n for n in header if n.split(".")[-2:] == ["norm", "weight"] and "layers" not in n)
    for i in range(header[norm]["shape"][0]):
        poison(model / "model.safetensors", norm, i, 0x7F7F)
    srv = start_server(model_dir=model)
    for path, body in (("/v1/embeddings", {"input": ["a", "b"], "encoding_format": "float"}), ("/embed", {"inputs": "a"})):
        status, _, raw = srv.request("POST", path, body)
        assert status == 500, raw[:300]  # before: 200 with null components
        error = json.loads(raw)["error"]
        message = error["message"] if path == "/v1/embeddings" else error
        assert "overflowing-model" in message and "non-finite" in message, message


def test_a_model_that_does_not_fit_is_refused_saying_what_it_needs_and_which_flag_helps(binary, tmp_path):
    # A 4 MB model whose workspace for 16M tokens (the largest --max-num-batched-tokens) needs ~300 GiB: more than
    # any CI machine has, refused before a byte is allocated, in one line that gives both figures and the ways out.
    from server_process import make_model
    model = make_model(tmp_path / "wide", hidden=256, layers=1, heads=4, kv_heads=2, head_dim=64, intermediate=1024,
                       vocab_size=4096)
    for command in (["serve", "--port", "0"], ["bench", "--seconds", "0.1"]):
        try:
            proc = subprocess.run([str(binary), command[0], "--model-path", str(model), "--device", "cpu",
                                   "--max-num-batched-tokens", "16777216", *command[1:]],
                                  capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired as e:
            pytest.fail(f"{command[0]} did not refuse the model: {e.stderr!r}")
        assert proc.returncode == 1, (command, proc.returncode, proc.stderr)
        last = proc.stderr.strip().splitlines()[-1]
        assert "the model needs" in last and "GiB" in last and "is available" in last, last
        assert "--max-num-batched-tokens" in last and "smaller model" in last, last
        assert "ready" not in proc.stderr
        if command[0] == "serve":  # it listens before loading (health checks see it alive), and says so
            assert all("loading" in line for line in proc.stderr.splitlines() if "listening on" in line), proc.stderr


@pytest.mark.parametrize("dtype", ["auto", "float32"])
def test_the_server_keeps_serving_when_its_weights_file_is_truncated(start_server, tiny_model, tmp_path, dtype):
    """`cp new.safetensors model.safetensors` truncates the served file before it writes the new one. Pages of a
    mapping past a file's end fault with SIGBUS, and the process died with nothing in the log (issue 13 item 5):
    the engine copies every weight at load (the CPU's embedding table too) and drops the mapping, so nothing
    reads the file afterwards, in either CPU mode."""
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    srv = start_server("--dtype", dtype, model_dir=model)
    texts = ["the text embedded before", "naïve café ☕ and other rows of the embedding table"]
    before = [embed_one(srv, t) for t in texts]
    with open(model / "model.safetensors", "r+b") as f:
        f.truncate(8)  # what cp leaves for an instant: the header length, nothing after it
    after = [embed_one(srv, t) for t in texts]
    assert srv.alive(), srv.log()[-2000:]
    for b, a in zip(before, after):
        assert np.array_equal(a, b), "the vectors must not change: the weights are the copies made at load"
