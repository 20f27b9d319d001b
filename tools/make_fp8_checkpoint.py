#!/usr/bin/env python3
"""Writes an FP8 (e4m3) checkpoint from a bf16/f16/f32 Qwen3 one, in the layouts SGLang and vLLM read.

    python3 tools/make_fp8_checkpoint.py --src /models/Qwen3-Embedding-4B --out /tmp/q4b-fp8
    python3 tools/make_fp8_checkpoint.py --src DIR --out DIR --format fp8 --strategy tensor

Every linear weight of the decoder layers (q/k/v/o_proj, gate/up/down_proj) becomes F8_E4M3 codes plus a
float32 `weight_scale`; the embedding table and the norms stay as stored. Quantisation is what embedserve's
`--quantization fp8` does at load: scale = max|row| / 448 in float32, codes = e4m3(w / scale) rounded to nearest
even, saturating. So a per-channel checkpoint written here loads to the very codes and scales the engine would
compute itself.

--format compressed-tensors (default): llm-compressor's FP8_DYNAMIC layout (quant_method "compressed-tensors",
format "float-quantized", weights per channel or per tensor, dynamic per-token input activations), weight_scale
[out, 1] (or [1]). --format fp8: vLLM's own "fp8" method (activation_scheme "dynamic"), weight_scale [] per tensor
or [out] per channel. numpy only (no torch, no safetensors package): safetensors is read and written by hand.
"""

import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

E4M3_MAX = np.float32(448.0)
LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
DTYPES = {"BF16": 2, "F16": 2, "F32": 4}


def e4m3_values():
    """The 127 non-negative finite e4m3fn values, by code (ascending with the code)."""
    codes = np.arange(127)
    exponent, mantissa = codes >> 3, codes & 7
    sub = mantissa.astype(np.float64) * 2.0 ** -9
    normal = (1.0 + mantissa / 8.0) * 2.0 ** (exponent - 7.0)
    return np.where(exponent == 0, sub, normal)


VALUES = e4m3_values()


def to_e4m3(x):
    """float32 array → uint8 e4m3fn codes: round to nearest, ties to even code, saturating at ±448."""
    x = np.asarray(x, dtype=np.float32)
    a = np.minimum(np.abs(x).astype(np.float64), 448.0)
    hi = np.searchsorted(VALUES, a, side="left").clip(0, 126)
    lo = (hi - 1).clip(0, 126)
    d_lo, d_hi = a - VALUES[lo], VALUES[hi] - a
    code = np.where((d_hi < d_lo) | ((d_hi == d_lo) & (hi % 2 == 0)), hi, lo).astype(np.uint8)
    return code | (np.signbit(x).astype(np.uint8) << 7)


def quantize(w, per_channel):
    """w float32 [out, in] → (codes uint8 [out, in], scales float32 [out] or [1])."""
    amax = np.abs(w).max(axis=1) if per_channel else np.array([np.abs(w).max()], dtype=np.float32)
    scale = np.where(amax > 0, amax.astype(np.float32) / E4M3_MAX, np.float32(1.0)).astype(np.float32)
    rows = scale[:, None] if per_channel else scale[0]
    return to_e4m3(w / rows), scale


def read_safetensors(path):
    """{name: (dtype, shape, memmapped bytes)} of one file."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        out[name] = (e["dtype"], e["shape"], data[b:end])
    return out


def widen(dtype, raw, shape):
    if dtype == "F32":
        return raw.view(np.float32).reshape(shape)
    if dtype == "BF16":
        return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(shape)
    if dtype == "F16":
        return raw.view(np.float16).astype(np.float32).reshape(shape)
    sys.exit(f"tensor dtype {dtype} cannot be quantised (BF16, F16 or F32)")


def source_tensors(src):
    index = os.path.join(src, "model.safetensors.index.json")
    files = [os.path.join(src, "model.safetensors")]
    if not os.path.exists(files[0]):
        with open(index) as f:
            files = sorted({os.path.join(src, v) for v in json.load(f)["weight_map"].values()})
    tensors = {}
    for path in files:
        tensors.update(read_safetensors(path))
    return tensors


def is_linear(name, shape):
    return len(shape) == 2 and ".layers." in "." + name and name.endswith(".weight") and \
        name.split(".")[-2] in LINEARS


def convert(a):
    tensors = source_tensors(a.src)
    per_channel = a.strategy == "channel"
    # Plan the header first (sizes are known from shapes), then stream tensor by tensor: a 4B checkpoint never
    # sits in memory whole.
    plan = []
    for name in sorted(tensors):
        dtype, shape, raw = tensors[name]
        if name.startswith("lm_head."):
            continue
        if is_linear(name, shape):
            plan.append((name, "F8_E4M3", shape, shape[0] * shape[1], ("codes", name)))
            if a.format == "compressed-tensors":
                sshape = [shape[0], 1] if per_channel else [1]
            else:
                sshape = [shape[0]] if per_channel else []
            plan.append((name + "_scale", "F32", sshape, 4 * (shape[0] if per_channel else 1), ("scale", name)))
        else:
            plan.append((name, dtype, shape, len(raw), ("copy", name)))
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, dtype, shape, size, _ in sorted(plan, key=lambda p: p[0]):
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    os.makedirs(a.out, exist_ok=True)
    for f in os.listdir(a.src):
        if f.endswith(".safetensors") or f == "model.safetensors.index.json" or f == "config.json":
            continue
        s = os.path.join(a.src, f)
        if os.path.isfile(s):
            shutil.copyfile(s, os.path.join(a.out, f))
        elif os.path.isdir(s):
            shutil.copytree(s, os.path.join(a.out, f), dirs_exist_ok=True)
    quantized = {}
    with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for name, dtype, shape, size, (kind, src_name) in sorted(plan, key=lambda p: p[0]):
            sdtype, sshape, raw = tensors[src_name]
            if kind == "copy":
                f.write(raw.tobytes())
                continue
            # A weight and its scale sort next to each other ("x.weight" < "x.weight_scale"): quantise once.
            if src_name not in quantized:
                quantized = {src_name: quantize(widen(sdtype, raw, sshape), per_channel)}
            codes, scale = quantized[src_name]
            f.write(codes.tobytes() if kind == "codes" else scale.astype("<f4").tobytes())
    with open(os.path.join(a.src, "config.json")) as fc:
        config = json.load(fc)
    if a.format == "fp8":
        config["quantization_config"] = {"quant_method": "fp8", "activation_scheme": "dynamic"}
    else:
        group = {"targets": ["Linear"],
                 "weights": {"num_bits": 8, "type": "float", "symmetric": True, "dynamic": False,
                             "strategy": a.strategy, "group_size": None, "block_structure": None,
                             "observer": "minmax", "actorder": None},
                 "input_activations": {"num_bits": 8, "type": "float", "symmetric": True, "dynamic": True,
                                       "strategy": "token", "group_size": None, "block_structure": None,
                                       "observer": None}}
        config["quantization_config"] = {"quant_method": "compressed-tensors", "format": "float-quantized",
                                         "quantization_status": "compressed", "config_groups": {"group_0": group},
                                         "ignore": ["lm_head"], "kv_cache_scheme": None}
    with open(os.path.join(a.out, "config.json"), "w") as fc:
        json.dump(config, fc, indent=2)
        fc.write("\n")
    return offset


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--src", required=True, help="a bf16, f16 or f32 Qwen3 checkpoint directory")
    p.add_argument("--out", required=True, help="directory to write the FP8 checkpoint into")
    p.add_argument("--format", choices=["compressed-tensors", "fp8"], default="compressed-tensors")
    p.add_argument("--strategy", choices=["channel", "tensor"], default="channel",
                   help="one weight scale per output channel (default) or per tensor")
    a = p.parse_args(argv)
    if os.path.abspath(a.src) == os.path.abspath(a.out):
        sys.exit("--out must differ from --src")
    total = convert(a)
    print(f"{a.out}: FP8 e4m3 ({a.format}, per {a.strategy}), {total / 1e6:.1f} MB of tensors")


if __name__ == "__main__":
    main()
