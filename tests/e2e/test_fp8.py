"""FP8 weights end to end on the CPU (the same arithmetic as the GPU's FP8 GEMMs): --quantization fp8 on a bf16
checkpoint, FP8 checkpoints written by tools/make_fp8_checkpoint.py in both layouts SGLang and vLLM read, the
layouts refused with a message naming them, the ready line and /info, and batch invariance through the server."""
from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

from helpers import MODEL_NAME, vectors
from server_process import ROOT, ServerProcess

TEXTS = ["Hello world", "你好，世界, a longer text with more tokens in it than the first", "x",
         "The quick brown fox jumps over the lazy dog. " * 6]


def write_fp8(src: pathlib.Path, out: pathlib.Path, *args: str) -> pathlib.Path:
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_fp8_checkpoint.py"), "--src", str(src), "--out",
                    str(out), *args], check=True, stdout=subprocess.DEVNULL)
    return out


@pytest.fixture(scope="module")
def texts_file(tmp_path_factory) -> pathlib.Path:
    path = tmp_path_factory.mktemp("fp8") / "texts.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def channel_checkpoint(tiny_model, tmp_path_factory) -> pathlib.Path:
    return write_fp8(tiny_model, tmp_path_factory.mktemp("fp8") / "ct-channel")


def embed(binary, model: pathlib.Path, texts_file: pathlib.Path, out: pathlib.Path, *flags: str,
          check: bool = True) -> tuple[np.ndarray | None, subprocess.CompletedProcess]:
    proc = subprocess.run([str(binary), "embed", "--model-path", str(model), "--device", "cpu", "--input",
                           str(texts_file), "--output", str(out), *flags], capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, proc.stderr
    return (np.load(out) if proc.returncode == 0 else None), proc


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def test_a_checkpoint_the_tool_writes_loads_to_the_vectors_of_quantising_at_load(binary, tiny_model, texts_file,
                                                                                  channel_checkpoint, tmp_path):
    bf16, _ = embed(binary, tiny_model, texts_file, tmp_path / "bf16.npy")
    on_the_fly, _ = embed(binary, tiny_model, texts_file, tmp_path / "fly.npy", "--quantization", "fp8")
    stored, _ = embed(binary, channel_checkpoint, texts_file, tmp_path / "stored.npy")
    # The tool quantises as the engine does (max|row| / 448, round to nearest even): the same codes and scales,
    # so the same bits.
    assert np.array_equal(on_the_fly, stored)
    # FP8 really ran (3 mantissa bits move every vector) and stays close to bf16 (measured ≥ 0.995 here).
    assert not np.array_equal(bf16, on_the_fly)
    assert cosines(bf16, on_the_fly).min() > 0.98, cosines(bf16, on_the_fly)


def test_vllm_fp8_per_tensor_checkpoint_loads(binary, tiny_model, texts_file, tmp_path):
    checkpoint = write_fp8(tiny_model, tmp_path / "vllm-tensor", "--format", "fp8", "--strategy", "tensor")
    config = json.loads((checkpoint / "config.json").read_text())
    assert config["quantization_config"] == {"quant_method": "fp8", "activation_scheme": "dynamic"}
    bf16, _ = embed(binary, tiny_model, texts_file, tmp_path / "bf16.npy")
    per_tensor, _ = embed(binary, checkpoint, texts_file, tmp_path / "tensor.npy")
    assert cosines(bf16, per_tensor).min() > 0.98, cosines(bf16, per_tensor)


@pytest.mark.parametrize("edit, named", [
    (lambda q: q.update(weight_block_size=[128, 128]), "weight_block_size [128, 128]"),
    (lambda q: q.update(activation_scheme="static"), "activation_scheme \"static\""),
    (lambda q: q.update(quant_method="awq"), "quant_method \"awq\""),
])
def test_unsupported_fp8_layouts_are_refused_by_name(binary, tiny_model, texts_file, tmp_path, edit, named):
    checkpoint = write_fp8(tiny_model, tmp_path / "vllm", "--format", "fp8")
    config = json.loads((checkpoint / "config.json").read_text())
    edit(config["quantization_config"])
    (checkpoint / "config.json").write_text(json.dumps(config))
    vecs, proc = embed(binary, checkpoint, texts_file, tmp_path / "v.npy", check=False)
    assert proc.returncode != 0 and vecs is None
    assert named in proc.stderr and "is not supported" in proc.stderr, proc.stderr


def test_static_input_scales_in_compressed_tensors_are_refused(binary, texts_file, channel_checkpoint, tmp_path):
    checkpoint = tmp_path / "static"
    shutil.copytree(channel_checkpoint, checkpoint)
    config = json.loads((checkpoint / "config.json").read_text())
    config["quantization_config"]["config_groups"]["group_0"]["input_activations"]["dynamic"] = False
    (checkpoint / "config.json").write_text(json.dumps(config))
    _, proc = embed(binary, checkpoint, texts_file, tmp_path / "v.npy", check=False)
    assert proc.returncode != 0
    assert "input_activations" in proc.stderr and "static input scales" in proc.stderr, proc.stderr


def test_an_fp8_weight_without_its_scale_is_named(binary, texts_file, channel_checkpoint, tmp_path):
    # Rename one weight_scale in the file's header (same length, so offsets hold): the weight lacks its scale.
    checkpoint = tmp_path / "noscale"
    shutil.copytree(channel_checkpoint, checkpoint)
    data = (checkpoint / "model.safetensors").read_bytes()
    name = b"model.layers.1.mlp.down_proj.weight_scale"
    assert data.count(name) == 1
    (checkpoint / "model.safetensors").write_bytes(data.replace(name, b"model.layers.1.mlp.down_proj.weight_scalX"))
    _, proc = embed(binary, checkpoint, texts_file, tmp_path / "v.npy", check=False)
    assert proc.returncode != 0
    assert ("model.layers.1.mlp.down_proj.weight in model.safetensors is F8_E4M3 but the checkpoint has no "
            "model.layers.1.mlp.down_proj.weight_scale") in proc.stderr, proc.stderr


def test_quantization_methods_other_than_fp8_are_refused(binary, tiny_model, texts_file, tmp_path):
    _, proc = embed(binary, tiny_model, texts_file, tmp_path / "v.npy", "--quantization", "awq", check=False)
    assert proc.returncode != 0
    assert "--quantization awq is not supported" in proc.stderr, proc.stderr


def test_serve_reports_fp8_and_keeps_a_text_s_bits_in_any_batch(binary, tiny_model):
    srv = ServerProcess(binary, tiny_model, "--device", "cpu", "--quantization", "fp8").start()
    try:
        ready = next(line for line in srv.log().splitlines() if "ready in" in line)
        assert "held fp8-e4m3" in ready and "fp8-e4m3 weights" in ready, ready
        status, _, raw = srv.request("GET", "/info")
        info = json.loads(raw)
        assert status == 200 and info["quantization"] == "fp8" and info["memory"]["weights_dtype"] == "fp8-e4m3"
        alone = []
        for t in TEXTS:
            status, _, body = srv.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": t,
                                                              "encoding_format": "float"})
            assert status == 200, body
            alone.append(vectors(body)[0])
        status, _, body = srv.post_json("/v1/embeddings", {"model": MODEL_NAME, "input": TEXTS * 3,
                                                          "encoding_format": "float"})
        assert status == 200, body
        batched = vectors(body)
        for i, v in enumerate(batched):
            assert np.array_equal(v, alone[i % len(TEXTS)]), f"input {i} differs in a batch"
    finally:
        assert srv.stop() == 0


def test_fp8_with_tensor_parallelism_is_refused_by_name(binary, tiny_model, texts_file, tmp_path):
    _, proc = embed(binary, tiny_model, texts_file, tmp_path / "v.npy", "--tp", "2", "--quantization", "fp8",
                    check=False)
    assert proc.returncode != 0
    assert "--quantization fp8 (or an FP8 checkpoint) runs with --tp 1 only" in proc.stderr, proc.stderr


def test_the_weights_held_shrink_by_the_gemm_weights_half(binary, tiny_model):
    """/info's memory: the GEMM weights at one byte per parameter plus a scale per row (the table and norms as in
    bf16), against two bytes in bf16."""
    held = {}
    for mode in ("bf16", "fp8"):
        srv = ServerProcess(binary, tiny_model, "--device", "cpu", *(["--quantization", "fp8"] if mode == "fp8" else []))
        srv.start()
        try:
            info = json.loads(srv.request("GET", "/info")[2])
            held[mode] = info["memory"]["weights_bytes"]
            assert info["quantization"] == ("fp8" if mode == "fp8" else None)
        finally:
            assert srv.stop() == 0
    # TINY_MODEL: 2 layers, hidden 32, 4 heads / 2 kv heads of 16, intermediate 64.
    rows = (2 * 32 + 64) + 32 + 2 * 64 + 32                 # output rows of k|v|q, o, gate|up, down
    params = (2 * 32 + 64) * 32 + 32 * 64 + 2 * 64 * 32 + 32 * 64
    assert held["bf16"] - held["fp8"] == 2 * (2 * params - (params + 4 * rows)), held
