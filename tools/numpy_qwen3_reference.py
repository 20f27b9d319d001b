#!/usr/bin/env python3
"""A plain float64 numpy Qwen3 forward pass: an independent check on transformers and on the C++ engine.

It follows transformers' modeling_qwen3.py line by line (Qwen3Model, eager attention), one sequence at a
time with positions 0..n-1 (what left-padded transformers computes too, since RoPE scores depend only on
relative positions):

    h = embed_tokens[ids]
    per layer:  x = RMSNorm(h);  q, k, v = x Wq^T, x Wk^T, x Wv^T  (split into heads of head_dim)
                q = RMSNorm_head(q) (q_norm), k = RMSNorm_head(k) (k_norm)        -- before RoPE
                q, k = q cos + rotate_half(q) sin, ...  rotate_half(x) = [-x2, x1]   (halves, not pairs)
                attention: softmax(q k^T / sqrt(head_dim) + causal mask) v, kv head = head // (heads / kv_heads)
                h = h + attn Wo^T;  x = RMSNorm(h);  h = h + (silu(x Wg^T) * x Wu^T) Wd^T
    h = RMSNorm(h) (final norm); pool (last token, mean or first); L2-normalise if modules.json says so.

Usable as a library (load_model, Qwen3Reference.embed) and as a command:
    python3 tools/numpy_qwen3_reference.py --model DIR --text "hello" [--text ...]
"""

import argparse
import json
import os
import struct

import numpy as np

_NP_DTYPE = {"F32": "<f4", "F16": "<f2", "BF16": "<u2", "F64": "<f8"}


def read_safetensors(path):
    """{name: float64 array} from one safetensors file (bf16 widened by shifting into the high half)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        raw = np.frombuffer(data, dtype=_NP_DTYPE[meta["dtype"]], count=(end - start) // np.dtype(_NP_DTYPE[meta["dtype"]]).itemsize,
                            offset=base + start)
        if meta["dtype"] == "BF16":
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        out[name] = raw.astype(np.float64).reshape(meta["shape"])
    return out


def load_model(model_dir):
    """Reads config.json (transformers 4.x or 5.x), the safetensors (one file or sharded) and the
    sentence-transformers pooling/normalisation. Returns a Qwen3Reference."""
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    index = os.path.join(model_dir, "model.safetensors.index.json")
    tensors = {}
    if os.path.exists(index):
        with open(index, encoding="utf-8") as f:
            for shard in sorted(set(json.load(f)["weight_map"].values())):
                tensors.update(read_safetensors(os.path.join(model_dir, shard)))
    else:
        tensors = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    tensors = {(k[len("model."):] if k.startswith("model.") else k): v for k, v in tensors.items()
               if not k.startswith("lm_head")}

    pooling, normalize = "lasttoken", True
    modules_path = os.path.join(model_dir, "modules.json")
    if os.path.exists(modules_path):
        with open(modules_path, encoding="utf-8") as f:
            modules = json.load(f)
        normalize = any(m["type"].endswith("Normalize") for m in modules)
        for m in modules:
            if m["type"].endswith("Pooling"):
                with open(os.path.join(model_dir, m["path"], "config.json"), encoding="utf-8") as f:
                    pc = json.load(f)
                pooling = ("lasttoken" if pc.get("pooling_mode_lasttoken") else
                           "mean" if pc.get("pooling_mode_mean_tokens") else
                           "cls" if pc.get("pooling_mode_cls_token") else None)
                if pooling is None:
                    raise ValueError(f"{m['path']}/config.json: unsupported pooling mode")
    return Qwen3Reference(cfg, tensors, pooling, normalize)


class Qwen3Reference:
    def __init__(self, cfg, tensors, pooling="lasttoken", normalize=True):
        self.cfg, self.w, self.pooling, self.normalize = cfg, tensors, pooling, normalize
        self.hidden = cfg["hidden_size"]
        self.heads = cfg["num_attention_heads"]
        self.kv_heads = cfg["num_key_value_heads"]
        self.head_dim = cfg.get("head_dim") or self.hidden // self.heads
        self.eps = cfg["rms_norm_eps"]
        rope = cfg.get("rope_parameters") or {}
        self.theta = rope.get("rope_theta", cfg.get("rope_theta", 10000.0))
        self.layers = cfg["num_hidden_layers"]
        self.vocab_size = cfg["vocab_size"]

    def _rms(self, x, weight):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * weight

    def _rope(self, x, positions):  # x [T, heads, hd]
        hd = self.head_dim
        inv_freq = 1.0 / (self.theta ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
        freqs = positions[:, None].astype(np.float64) * inv_freq[None, :]     # [T, hd/2]
        emb = np.concatenate([freqs, freqs], axis=-1)                          # [T, hd]
        cos, sin = np.cos(emb)[:, None, :], np.sin(emb)[:, None, :]
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        rotated = np.concatenate([-x2, x1], axis=-1)
        return x * cos + rotated * sin

    def hidden_states(self, ids):
        """float64 [T, hidden]: the final-normed last_hidden_state of one sequence."""
        ids = np.asarray(ids, dtype=np.int64)
        if ids.size == 0:
            raise ValueError("empty sequence")
        if ids.min() < 0 or ids.max() >= self.vocab_size:
            raise ValueError(f"token id {int(ids.max())} is outside the vocabulary of {self.vocab_size}")
        T, H, KV, hd = len(ids), self.heads, self.kv_heads, self.head_dim
        w = self.w
        h = w["embed_tokens.weight"][ids]                                      # [T, hidden]
        pos = np.arange(T)
        causal = np.triu(np.full((T, T), -np.inf), k=1)
        for i in range(self.layers):
            p = f"layers.{i}."
            x = self._rms(h, w[p + "input_layernorm.weight"])
            q = (x @ w[p + "self_attn.q_proj.weight"].T).reshape(T, H, hd)
            k = (x @ w[p + "self_attn.k_proj.weight"].T).reshape(T, KV, hd)
            v = (x @ w[p + "self_attn.v_proj.weight"].T).reshape(T, KV, hd)
            q = self._rope(self._rms(q, w[p + "self_attn.q_norm.weight"]), pos)
            k = self._rope(self._rms(k, w[p + "self_attn.k_norm.weight"]), pos)
            group = H // KV
            attn = np.empty((T, H, hd))
            for head in range(H):
                kvh = head // group                                            # repeat_kv's mapping
                s = q[:, head, :] @ k[:, kvh, :].T / np.sqrt(hd) + causal     # [T, T]
                s = np.exp(s - s.max(axis=-1, keepdims=True))
                attn[:, head, :] = (s / s.sum(axis=-1, keepdims=True)) @ v[:, kvh, :]
            h = h + attn.reshape(T, H * hd) @ w[p + "self_attn.o_proj.weight"].T
            x = self._rms(h, w[p + "post_attention_layernorm.weight"])
            gate = x @ w[p + "mlp.gate_proj.weight"].T
            up = x @ w[p + "mlp.up_proj.weight"].T
            h = h + (gate / (1.0 + np.exp(-gate)) * up) @ w[p + "mlp.down_proj.weight"].T
        return self._rms(h, w["norm.weight"])

    def embed(self, ids):
        """float64 [hidden]: pooled and (if the model says so) L2-normalised vector of one sequence."""
        hs = self.hidden_states(ids)
        if self.pooling == "lasttoken":
            v = hs[-1]
        elif self.pooling == "mean":
            v = hs.mean(axis=0)
        else:
            v = hs[0]
        if self.normalize:
            v = v / max(np.linalg.norm(v), 1e-12)
        return v


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="model directory (config.json, safetensors, tokenizer.json)")
    ap.add_argument("--text", action="append", required=True)
    a = ap.parse_args()
    from tokenizers import Tokenizer  # only the command needs it
    tok = Tokenizer.from_file(os.path.join(a.model, "tokenizer.json"))
    model = load_model(a.model)
    for t in a.text:
        ids = tok.encode(t).ids
        print(json.dumps({"text": t, "ids": ids, "embedding": [float(x) for x in model.embed(ids)]}))


if __name__ == "__main__":
    main()
