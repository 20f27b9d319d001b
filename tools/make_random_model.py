#!/usr/bin/env python3
"""Builds a random-weight Qwen3 embedding model in Hugging Face format, bit-identically from a seed.

The parity fixtures (tests/data/reference/) are transformers' output for these models; CI rebuilds the
same models in seconds with this script (numpy + the copied tokenizer only: no torch), so the
vocabulary-sized embedding table never has to be committed.

    python3 tools/make_random_model.py --preset tiny-bf16 --out /tmp/m
    python3 tools/make_random_model.py --out /tmp/m --seed 7 --hidden 32 --layers 3 --dtype f32 --shards 2

Determinism: numpy.random.default_rng(seed) (PCG64, whose streams numpy keeps stable across versions)
draws float32 normals in one fixed order; scaling is IEEE float32 arithmetic; bf16 is rounded to
nearest-even by bit manipulation, f16 by IEEE conversion; safetensors and JSON are written by hand in a
fixed layout. The same arguments give the same bytes on any machine.
"""

import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKENIZER_DIR = os.path.join(REPO, "tests", "data", "qwen3-tokenizer")
PROMPTS_FROM = os.path.join(REPO, "tests", "data", "configs", "0.6B", "config_sentence_transformers.json")

# The fixture cases of issue 3 item 6. CI and the transformers reference run build exactly these.
# Between them they cover: several layers with GQA (and MQA), head_dim != hidden/heads, bf16/f16/f32
# weights, a two-shard checkpoint, keys with and without "model.", transformers 4.x and 5.x configs,
# an lm_head that must be ignored, the 4B/8B vocabulary (151665 rows < the tokenizer's 151669 ids),
# and mean pooling without normalisation.
PRESETS = {
    # GQA 4:2, head_dim 16 != 32/4, bf16, 4.x config, "model." keys, one file, untied lm_head present.
    "tiny-bf16": dict(seed=1, hidden=32, layers=3, heads=4, kv_heads=2, head_dim=16, intermediate=64,
                      dtype="bf16", shards=1, model_prefix=True, config_style=4, lm_head=True),
    # MQA 4:1, head_dim == hidden/heads, f32, 5.x config (rope_parameters, dtype), bare keys, two shards.
    "tiny-f32-sharded": dict(seed=2, hidden=32, layers=2, heads=4, kv_heads=1, head_dim=8, intermediate=48,
                             dtype="f32", shards=2, model_prefix=False, config_style=5, rope_theta=10000.0),
    # GQA 6:2 (groups of 3), head_dim 24, odd sizes, f16, 4 layers, rms_norm_eps 1e-5 on embeddings small
    # enough (mean square ~1e-5) that the first RMSNorm's result depends on eps: a loader that ignores
    # rms_norm_eps fails here.
    "tiny-f16-gqa": dict(seed=3, hidden=48, layers=4, heads=6, kv_heads=2, head_dim=24, intermediate=80,
                         dtype="f16", shards=1, model_prefix=True, config_style=4, rms_norm_eps=1e-5,
                         embed_std=0.003),
    # The 4B/8B vocabulary (ids 151665..151668 have no row), mean pooling, no Normalize module.
    "tiny-vocab151665-mean": dict(seed=4, hidden=32, layers=2, heads=4, kv_heads=2, head_dim=16,
                                  intermediate=64, vocab_size=151665, dtype="bf16", shards=1,
                                  model_prefix=True, config_style=5, pooling="mean", normalize=False),
}

DEFAULTS = dict(seed=0, hidden=32, layers=3, heads=4, kv_heads=2, head_dim=16, intermediate=64,
                vocab_size=151669, dtype="bf16", shards=1, model_prefix=True, config_style=4,
                max_position=40960, rope_theta=1000000.0, rms_norm_eps=1e-6, pooling="lasttoken",
                normalize=True, lm_head=False, embed_std=1.0)

SAFETENSORS_DTYPE = {"bf16": "BF16", "f16": "F16", "f32": "F32"}
TORCH_DTYPE = {"bf16": "bfloat16", "f16": "float16", "f32": "float32"}


def f32_to_bf16_bits(x):
    """float32 array -> uint16 bf16 bits, round to nearest, ties to even (what torch's .to(bfloat16) does)."""
    bits = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounding = ((bits >> 16) & 1) + np.uint32(0x7FFF)
    return ((bits + rounding) >> 16).astype(np.uint16)  # no NaN/Inf arise from finite normals


def encode(x, dtype):
    """float32 array -> raw little-endian bytes of the stored dtype."""
    if dtype == "f32":
        return np.ascontiguousarray(x, dtype="<f4").tobytes()
    if dtype == "f16":
        return np.ascontiguousarray(x, dtype=np.float32).astype("<f2").tobytes()
    return f32_to_bf16_bits(x).astype("<u2").tobytes()


def make_tensors(a):
    """Draws every tensor in a fixed order. Returns [(name without prefix, float32 array)].

    Scales keep every sub-layer's contribution O(1) so a wrong op shows in the output: linears have std
    1/sqrt(fan_in) (unit-variance outputs), the embedding std `embed_std` (1 unless a preset makes it small
    to bring rms_norm_eps into play), and the RMSNorm / q_norm / k_norm weights 1 + 0.2·N(0,1) so that a
    missing or misplaced norm weight changes the result.
    """
    rng = np.random.default_rng(a.seed)
    q_dim, kv_dim = a.heads * a.head_dim, a.kv_heads * a.head_dim

    def normal(shape, std):
        return (rng.standard_normal(shape, dtype=np.float32) * np.float32(std)).astype(np.float32)

    def linear(out_f, in_f):
        return normal((out_f, in_f), 1.0 / np.sqrt(in_f))

    def norm_weight(n):
        return (np.float32(1.0) + normal((n,), 0.2)).astype(np.float32)

    out = [("embed_tokens.weight", normal((a.vocab_size, a.hidden), a.embed_std))]
    for i in range(a.layers):
        p = f"layers.{i}."
        out += [
            (p + "input_layernorm.weight", norm_weight(a.hidden)),
            (p + "self_attn.q_proj.weight", linear(q_dim, a.hidden)),
            (p + "self_attn.k_proj.weight", linear(kv_dim, a.hidden)),
            (p + "self_attn.v_proj.weight", linear(kv_dim, a.hidden)),
            (p + "self_attn.q_norm.weight", norm_weight(a.head_dim)),
            (p + "self_attn.k_norm.weight", norm_weight(a.head_dim)),
            (p + "self_attn.o_proj.weight", linear(a.hidden, q_dim)),
            (p + "post_attention_layernorm.weight", norm_weight(a.hidden)),
            (p + "mlp.gate_proj.weight", linear(a.intermediate, a.hidden)),
            (p + "mlp.up_proj.weight", linear(a.intermediate, a.hidden)),
            (p + "mlp.down_proj.weight", linear(a.hidden, a.intermediate)),
        ]
    out.append(("norm.weight", norm_weight(a.hidden)))
    return out


def write_safetensors(path, tensors, dtype):
    """Writes [(name, float32 array)] as one safetensors file: 8-byte header length, JSON header padded
    with spaces to 8 bytes (the reference writer's alignment), then the data back to back in name order."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, arr in sorted(tensors, key=lambda t: t[0]):
        blob = encode(arr, dtype)
        header[name] = {"dtype": SAFETENSORS_DTYPE[dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)))
        f.write(head)
        for b in blobs:
            f.write(b)
    return offset


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def model_config(a):
    cfg = {
        "architectures": ["Qwen3ForCausalLM" if a.model_prefix else "Qwen3Model"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 151643,
        "eos_token_id": 151643,
        "head_dim": a.head_dim,
        "hidden_act": "silu",
        "hidden_size": a.hidden,
        "initializer_range": 0.02,
        "intermediate_size": a.intermediate,
        "max_position_embeddings": a.max_position,
        "max_window_layers": a.layers,
        "model_type": "qwen3",
        "num_attention_heads": a.heads,
        "num_hidden_layers": a.layers,
        "num_key_value_heads": a.kv_heads,
        "rms_norm_eps": a.rms_norm_eps,
        "sliding_window": None,
        "tie_word_embeddings": not a.lm_head,
        "use_cache": True,
        "use_sliding_window": False,
        "vocab_size": a.vocab_size,
    }
    if a.config_style == 4:  # transformers 4.x: top-level rope_theta and torch_dtype
        cfg.update({"rope_scaling": None, "rope_theta": a.rope_theta, "torch_dtype": TORCH_DTYPE[a.dtype],
                    "transformers_version": "4.51.3"})
    else:  # transformers 5.x: rope_parameters and dtype
        cfg.update({"rope_parameters": {"rope_theta": a.rope_theta, "rope_type": "default"},
                    "dtype": TORCH_DTYPE[a.dtype], "transformers_version": "5.0.0"})
    return dict(sorted(cfg.items()))


def sentence_transformers_files(a, out):
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if a.normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        os.makedirs(os.path.join(out, "2_Normalize"), exist_ok=True)
    write_json(os.path.join(out, "modules.json"), modules)
    os.makedirs(os.path.join(out, "1_Pooling"), exist_ok=True)
    write_json(os.path.join(out, "1_Pooling", "config.json"), {
        "word_embedding_dimension": a.hidden,
        "pooling_mode_cls_token": a.pooling == "cls",
        "pooling_mode_mean_tokens": a.pooling == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": a.pooling == "lasttoken",
        "include_prompt": True,
    })
    with open(PROMPTS_FROM, encoding="utf-8") as f:
        st = json.load(f)
    write_json(os.path.join(out, "config_sentence_transformers.json"), st)


def build(a, out):
    if a.heads % a.kv_heads:
        sys.exit(f"--heads {a.heads} must be a multiple of --kv-heads {a.kv_heads}")
    if a.shards not in (1, 2):
        sys.exit("--shards must be 1 or 2")
    os.makedirs(out, exist_ok=True)
    tensors = make_tensors(a)
    if a.lm_head:  # drawn after everything else so it never shifts the other tensors' streams
        rng = np.random.default_rng(a.seed + 1_000_003)
        tensors.append(("lm_head.weight", rng.standard_normal((a.vocab_size, a.hidden), dtype=np.float32)))
    prefix = "model." if a.model_prefix else ""
    named = [(n if n.startswith("lm_head") else prefix + n, t) for n, t in tensors]

    for stale in ("model.safetensors", "model.safetensors.index.json", "model-00001-of-00002.safetensors",
                  "model-00002-of-00002.safetensors"):
        if os.path.exists(os.path.join(out, stale)):
            os.remove(os.path.join(out, stale))
    total = 0
    if a.shards == 1:
        total = write_safetensors(os.path.join(out, "model.safetensors"), named, a.dtype)
    else:
        # Shard 1: the embedding table and the first half of the layers; shard 2: the rest.
        half = a.layers // 2
        def in_first(name):
            if "embed_tokens" in name:
                return True
            if ".layers." in "." + name:
                return int(name.split("layers.")[1].split(".")[0]) < half
            return False
        files = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
        groups = [[t for t in named if in_first(t[0])], [t for t in named if not in_first(t[0])]]
        weight_map = {}
        for fname, group in zip(files, groups):
            total += write_safetensors(os.path.join(out, fname), group, a.dtype)
            weight_map.update({n: fname for n, _ in group})
        write_json(os.path.join(out, "model.safetensors.index.json"),
                   {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))})

    write_json(os.path.join(out, "config.json"), model_config(a))
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(os.path.join(TOKENIZER_DIR, f), os.path.join(out, f))
    sentence_transformers_files(a, out)
    return total


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="directory to write the model into")
    p.add_argument("--preset", choices=sorted(PRESETS), help="a named fixture case; other flags override it")
    p.add_argument("--list-presets", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int)
    p.add_argument("--hidden", type=int)
    p.add_argument("--layers", type=int)
    p.add_argument("--heads", type=int)
    p.add_argument("--kv-heads", type=int)
    p.add_argument("--head-dim", type=int)
    p.add_argument("--intermediate", type=int)
    p.add_argument("--vocab-size", type=int)
    p.add_argument("--dtype", choices=["bf16", "f16", "f32"])
    p.add_argument("--shards", type=int, choices=[1, 2])
    p.add_argument("--no-model-prefix", dest="model_prefix", action="store_const", const=False,
                   help='store keys as "layers.0..." (Qwen3Model) instead of "model.layers.0..."')
    p.add_argument("--config-style", type=int, choices=[4, 5], help="transformers 4.x or 5.x config.json")
    p.add_argument("--max-position", type=int)
    p.add_argument("--rope-theta", type=float)
    p.add_argument("--rms-norm-eps", type=float)
    p.add_argument("--embed-std", type=float, help="standard deviation of the embedding table (default 1)")
    p.add_argument("--pooling", choices=["lasttoken", "mean", "cls"])
    p.add_argument("--no-normalize", dest="normalize", action="store_const", const=False)
    p.add_argument("--lm-head", dest="lm_head", action="store_const", const=True,
                   help="also store an untied lm_head.weight (loaders must ignore it)")
    ns = p.parse_args(argv)
    merged = dict(DEFAULTS)
    if ns.preset:
        merged.update(PRESETS[ns.preset])
    for k in DEFAULTS:
        v = getattr(ns, k, None)
        if v is not None:
            merged[k] = v
    merged["out"], merged["preset"] = ns.out, ns.preset
    return argparse.Namespace(**merged)


def main(argv=None):
    a = parse_args(argv)
    total = build(a, a.out)
    print(f"{a.out}: {a.preset or 'custom'} seed={a.seed} hidden={a.hidden} layers={a.layers} heads={a.heads}/"
          f"{a.kv_heads} head_dim={a.head_dim} dtype={a.dtype} shards={a.shards} ({total / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
