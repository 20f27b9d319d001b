#!/usr/bin/env python3
"""FP8 (--quantization fp8) against float32 on one model: accuracy next to bf16's, retrieval agreement, and batch
invariance. Needs torch + transformers for the transformers rows (--skip-transformers leaves them out).

    python3 bench/cuda/compare_fp8.py --embedserve .carry/embedserve --workdir /tmp/fp8-4b --model /tmp/qwen3-4b-random

Accuracy: tests/data/reference_texts.jsonl plus texts of --long token counts (default 1,000 to 8,000), each
embedded by embedserve in bf16 and fp8 (packed batches) and by transformers' Qwen3Model in float32 (the
reference; TF32 off) and bf16 (its own rounding error), each text alone. Printed: mean and worst (1 − cos) against
transformers float32 for embedserve fp8, embedserve bf16 and transformers bf16 (goal for fp8: mean ≤ 2e-3).
Retrieval: --queries random queries (8–32 words) over --documents random documents (40–200 words) drawn from the
reference texts' words; top-10 neighbours by cosine with embedserve's f32 parity mode (transformers float32 to
cosine ≥ 0.99999) as the reference, and the fraction of the top 10 that fp8 (and bf16) vectors agree on (goal ≥
0.95). Batch invariance: every vector of fp8 in 16,384-token batches against one text per batch, bit for bit.
--torch-fp8: the same rows for the FP8 scheme SGLang and vLLM run (`--quantization fp8` on a bf16 checkpoint:
e4m3 weights with one scale per output channel, activations quantised per token on the fly, products summed in
f32, bf16 out), emulated in transformers' bf16 Qwen3Model by replacing every decoder Linear: an independent
implementation of the method, to tell the method's error from ours.
"""

import argparse
import json
import os
import random
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare_bf16 import comparison_texts, cosines, embed, transformers_vectors, with_tokenizer  # noqa: E402


def error_row(name, c):
    err = 1 - c
    print(f"  {name:36s} mean 1-cos {err.mean():.3e}   worst 1-cos {err.max():.3e}   min cos {c.min():.6f}")
    return err


def write_texts(path, texts):
    with open(path, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")


def top10(queries, documents):
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    d = documents / np.linalg.norm(documents, axis=1, keepdims=True)
    return np.argsort(-(q @ d.T), axis=1, kind="stable")[:, :10]


def agreement(a, b):
    return float(np.mean([len(set(x) & set(y)) / 10 for x, y in zip(a, b)]))


def torch_fp8_vectors(model_dir, texts_ids, device):
    """transformers' bf16 Qwen3Model with every decoder Linear as SGLang's/vLLM's dynamic FP8 linear: weights
    e4m3 per output channel (scale max|w_row| / 448), each token's input e4m3 with its own scale, the product of
    the codes summed in f32 (exact products, as an FP8 tensor-core GEMM), times both scales, rounded to bf16."""
    import torch
    e4m3 = torch.float8_e4m3fn

    def quantise_rows(x):
        scale = x.abs().amax(dim=1, keepdim=True) / 448.0
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        return (x / scale).clamp(-448.0, 448.0).to(e4m3), scale

    def fp8_linears(model):
        for name, mod in model.named_modules():
            if isinstance(mod, torch.nn.Linear) and ".layers." in f".{name}":
                w_codes, w_scale = quantise_rows(mod.weight.data.float())
                w_deq = w_codes.float() * w_scale  # exact: an e4m3 code times an f32 scale
                mod.weight = None

                def forward(x, w_deq=w_deq):
                    x2 = x.reshape(-1, x.shape[-1]).float()
                    x_codes, x_scale = quantise_rows(x2)
                    y = (x_codes.float() * x_scale) @ w_deq.t()
                    return y.to(torch.bfloat16).reshape(*x.shape[:-1], -1)

                mod.forward = forward

    return transformers_vectors(model_dir, texts_ids, "bf16", device, prepare=fp8_linears)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embedserve", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--model", required=True, help="a bf16 checkpoint; fp8 is --quantization fp8 on it")
    ap.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    ap.add_argument("--long", default="1000,2000,4000,8000", help="token counts of the long texts")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--documents", type=int, default=2000)
    ap.add_argument("--skip-transformers", action="store_true")
    ap.add_argument("--torch-fp8", action="store_true",
                    help="also SGLang's/vLLM's FP8 scheme, emulated in transformers")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    w, dev = args.workdir, args.device
    model = with_tokenizer(args.model, w)
    with open(os.path.join(model, "config.json")) as f:
        config = json.load(f)
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(model, "tokenizer.json"))

    texts, ids = comparison_texts(tok, config["vocab_size"], args.long)
    texts_path = os.path.join(w, "texts.jsonl")
    write_texts(texts_path, texts)
    print(f"model {model}: hidden {config['hidden_size']}, {config['num_hidden_layers']} layers; {len(texts)} texts "
          f"of {min(map(len, ids))}-{max(map(len, ids))} tokens")

    fp8 = embed(args.embedserve, dev, model, texts_path, os.path.join(w, "fp8.npy"), "--quantization", "fp8")
    fp8_alone = embed(args.embedserve, dev, model, texts_path, os.path.join(w, "fp8_alone.npy"), "--quantization",
                      "fp8", "--max-num-batched-tokens", "1")
    bf16 = embed(args.embedserve, dev, model, texts_path, os.path.join(w, "bf16.npy"), "--dtype", "bf16")
    same = int((fp8 == fp8_alone).all(1).sum())
    print(f"fp8 batch invariance (16,384-token batches vs one text per batch): bitwise equal rows {same}/{len(fp8)}, "
          f"max |diff| {np.abs(fp8.astype(np.float64) - fp8_alone).max():.3g}")
    if not args.skip_transformers:
        hf_f32 = transformers_vectors(model, ids, "f32", dev)
        hf_bf16 = transformers_vectors(model, ids, "bf16", dev)
        print("against transformers float32, texts of 1 to 8,000 tokens:")
        ours = error_row("embedserve fp8", cosines(fp8, hf_f32))
        error_row("embedserve bf16", cosines(bf16, hf_f32))
        error_row("transformers bf16 (its own error)", cosines(hf_bf16, hf_f32))
        if args.torch_fp8:
            error_row("transformers, SGLang's fp8 scheme", cosines(torch_fp8_vectors(model, ids, dev), hf_f32))
        print(f"fp8 accuracy goal (mean 1-cos <= 2e-3): {'holds' if ours.mean() <= 2e-3 else 'MISSED'}")

    # Retrieval: random word sequences from the reference texts' vocabulary of words.
    rng = random.Random(12)
    words = [v for t in texts[:60] for v in t.split() if v.isprintable()]
    docs = [" ".join(rng.choice(words) for _ in range(rng.randint(40, 200))) for _ in range(args.documents)]
    queries = [" ".join(rng.choice(words) for _ in range(rng.randint(8, 32))) for _ in range(args.queries)]
    corpus_path = os.path.join(w, "retrieval.jsonl")
    write_texts(corpus_path, queries + docs)
    vecs = {}
    for name, flags in (("f32", ["--dtype", "f32"]), ("bf16", ["--dtype", "bf16"]), ("fp8", ["--quantization", "fp8"])):
        vecs[name] = embed(args.embedserve, dev, model, corpus_path, os.path.join(w, f"retrieval_{name}.npy"), *flags)
    ref = top10(vecs["f32"][: args.queries], vecs["f32"][args.queries:])
    print(f"retrieval, {args.queries} queries over {args.documents} documents: top-10 agreement with f32")
    if args.torch_fp8:
        corpus_ids = [tok.encode(t).ids for t in queries + docs]  # the tokenizer appends the end-of-text token
        vecs["transformers fp8 scheme"] = torch_fp8_vectors(model, corpus_ids, dev)
    for name in [n for n in vecs if n != "f32"]:
        got = top10(vecs[name][: args.queries], vecs[name][args.queries:])
        a = agreement(ref, got)
        print(f"  {name}: {a:.4f}" + ("   (goal >= 0.95: " + ("holds" if a >= 0.95 else "MISSED") + ")"
                                      if name == "fp8" else ""))


if __name__ == "__main__":
    main()
