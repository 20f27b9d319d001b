#!/usr/bin/env python3
"""Writes a random-weight bf16 checkpoint with the exact shapes of a real Qwen3-Embedding model, for benchmarks.

    python3 bench/engine/make_random_checkpoint.py --config tests/data/configs/0.6B --out /tmp/qwen3-0.6b-random

Takes config.json and the sentence-transformers files (modules.json, 1_Pooling/, ...) from --config and
writes model.safetensors beside copies of them. The speed of a forward pass does not depend on the weights'
values, so random ones measure the real model's speed without downloading it (write it outside the
repository). Weights are N(0, 1/fan_in) so activations stay finite. numpy only. Tensors are drawn by --jobs
worker processes (every core by default), each from its own seed (--seed and the tensor's index), and written at
their offsets: on a GPU machine's 16 cores the 8B's 16 GB take seconds instead of minutes of device time.
"""

import argparse
import json
import multiprocessing
import os
import shutil
import struct

import numpy as np


def tensor_shapes(c):
    hidden, inter, hd = c["hidden_size"], c["intermediate_size"], c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
    q, kv = c["num_attention_heads"] * hd, c.get("num_key_value_heads", c["num_attention_heads"]) * hd
    yield "model.embed_tokens.weight", (c["vocab_size"], hidden)
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}."
        yield p + "input_layernorm.weight", (hidden,)
        yield p + "self_attn.q_proj.weight", (q, hidden)
        yield p + "self_attn.k_proj.weight", (kv, hidden)
        yield p + "self_attn.v_proj.weight", (kv, hidden)
        yield p + "self_attn.o_proj.weight", (hidden, q)
        yield p + "self_attn.q_norm.weight", (hd,)
        yield p + "self_attn.k_norm.weight", (hd,)
        yield p + "post_attention_layernorm.weight", (hidden,)
        yield p + "mlp.gate_proj.weight", (inter, hidden)
        yield p + "mlp.up_proj.weight", (inter, hidden)
        yield p + "mlp.down_proj.weight", (hidden, inter)
    yield "model.norm.weight", (hidden,)


def random_bf16(rng, shape):
    """bf16 bits (uint16) of N(0, 1/fan_in) values, or of 1 + N(0, 0.1) for norm weights (1-D)."""
    if len(shape) == 1:
        x = 1.0 + 0.1 * rng.standard_normal(shape, dtype=np.float32)
    else:
        x = rng.standard_normal(shape, dtype=np.float32)
        x *= np.float32(1.0 / np.sqrt(shape[1]))
    bits = x.view(np.uint32)
    bits += np.uint32(0x7FFF) + ((bits >> 16) & np.uint32(1))  # round to nearest even
    return (bits >> 16).astype(np.uint16)


def write_tensor(work):
    path, seed, index, shape, at = work
    data = random_bf16(np.random.default_rng([seed, index]), shape)
    fd = os.open(path, os.O_WRONLY)
    try:
        view, done = memoryview(data).cast("B"), 0
        while done < len(view):
            done += os.pwrite(fd, view[done:], at + done)
    finally:
        os.close(fd)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="folder with config.json (and sentence-transformers files)")
    ap.add_argument("--out", required=True, help="folder to write the checkpoint into")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=0, help="worker processes (0: every core)")
    args = ap.parse_args()

    with open(os.path.join(args.config, "config.json")) as f:
        config = json.load(f)
    os.makedirs(args.out, exist_ok=True)
    for name in os.listdir(args.config):
        src = os.path.join(args.config, name)
        (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, os.path.join(args.out, name),
                                                               **({"dirs_exist_ok": True} if os.path.isdir(src) else {}))

    shapes = list(tensor_shapes(config))
    header, offset = {}, 0
    for name, shape in shapes:
        n = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    header_bytes = json.dumps(header, separators=(",", ":")).encode()
    header_bytes += b" " * (-len(header_bytes) % 8)  # keep tensor data 8-byte aligned
    path = os.path.join(args.out, "model.safetensors")
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header_bytes)))
        f.write(header_bytes)
        f.truncate(8 + len(header_bytes) + offset)
    data_start = 8 + len(header_bytes)
    work = [(path, args.seed, i, shape, data_start + header[name]["data_offsets"][0])
            for i, (name, shape) in enumerate(shapes)]
    work.sort(key=lambda w: -int(np.prod(w[3])))  # the largest first, so no worker is left with one at the end
    with multiprocessing.Pool(args.jobs or os.cpu_count()) as pool:
        for _ in pool.imap_unordered(write_tensor, work):
            pass
    params = offset // 2
    print(f"wrote {path}: {len(shapes)} tensors, {params / 1e6:.1f} M parameters, {offset / 1e9:.2f} GB")


if __name__ == "__main__":
    main()
