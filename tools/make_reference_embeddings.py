#!/usr/bin/env python3
"""Writes tests/data/reference/*.json: the embeddings transformers computes for the random-weight presets.

For each preset of tools/make_random_model.py: build the model, tokenise tests/data/reference_texts.jsonl
(the `tokenizers` library on tokenizer.json, checked against transformers' AutoTokenizer), run
transformers' Qwen3Model in float32 on batches left-padded as sentence-transformers does, pool as
1_Pooling/config.json says (last token, mean or CLS), L2-normalise when modules.json has Normalize.
It cross-checks the same vectors against each text embedded alone, against SentenceTransformer(dir) when
sentence_transformers is importable, and against tools/numpy_qwen3_reference.py (float64), and prints
the largest differences. Texts with a token id past a preset's vocab_size are recorded as errors
(the engine must refuse them).

    python3 tools/make_reference_embeddings.py                    # transformers, CPU float32 (the fixtures)
    python3 tools/make_reference_embeddings.py --backend numpy    # no torch: interim fixtures, labelled so

Needs torch + transformers for the default backend; numpy, safetensors and tokenizers always.
"""

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time

import numpy as np

TOOLS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TOOLS)
sys.path.insert(0, TOOLS)
import make_random_model  # noqa: E402
import numpy_qwen3_reference  # noqa: E402

TEXTS = os.path.join(REPO, "tests", "data", "reference_texts.jsonl")
PAD_ID = 151643  # tokenizer_config.json's pad_token <|endoftext|>


def load_texts():
    with open(TEXTS, "rb") as f:
        raw = f.read()
    texts = [json.loads(line)["text"] for line in raw.decode("utf-8").split("\n") if line.strip()]  # not splitlines(): U+2028 is inside a text
    return texts, hashlib.sha256(raw).hexdigest()


def tokenize(model_dir, texts, check_transformers):
    """Token ids per text from tokenizer.json (EOS post-processor included); when asked, the same through
    transformers' AutoTokenizer, which must agree."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
    ids = [tok.encode(t).ids for t in texts]
    note = "tokenizers " + __import__("tokenizers").__version__
    if check_transformers:
        from transformers import AutoTokenizer
        at = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
        hf = [at(t)["input_ids"] for t in texts]
        bad = [i for i in range(len(texts)) if hf[i] != ids[i]]
        if bad:
            i = bad[0]
            raise SystemExit(f"AutoTokenizer ({type(at).__name__}) disagrees with tokenizer.json on {len(bad)} texts; "
                             f"first: text {i} {texts[i]!r}: {hf[i][:20]} vs {ids[i][:20]}")
        # Padded batch encoding as sentence-transformers does it: left padding, EOS kept.
        enc = at(texts[:4], padding=True)
        for row, ref in zip(enc["input_ids"], ids[:4]):
            if row[len(row) - len(ref):] != ref:
                raise SystemExit("AutoTokenizer's left-padded batch does not end with the unpadded ids")
        note += f"; equal to transformers AutoTokenizer ({type(at).__name__}, left padding)"
    return ids, note


def pool(hidden, mask, pooling):
    """hidden float32 [B, T, H] (left-padded), mask [B, T] -> [B, H], as sentence-transformers pools."""
    import torch
    if pooling == "lasttoken":
        return hidden[:, -1]  # left padding: the last column is every row's last real token
    if pooling == "mean":
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    first = mask.to(torch.int64).argmax(dim=1)  # left padding: CLS is the first real token
    return hidden[torch.arange(hidden.shape[0]), first]


class TransformersBackend:
    def __init__(self, device):
        import torch
        import transformers
        torch.backends.cuda.matmul.allow_tf32 = False  # TF32 would round inputs to 10 mantissa bits
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
        self.torch, self.device = torch, device
        self.origin = (f"transformers {transformers.__version__} Qwen3Model float32 on {device} "
                       f"(torch {torch.__version__}, TF32 off)")

    def load(self, model_dir, pooling, normalize):
        from transformers import AutoModel
        try:
            model = AutoModel.from_pretrained(model_dir, dtype=self.torch.float32)
        except TypeError:  # transformers 4.x spells it torch_dtype
            model = AutoModel.from_pretrained(model_dir, torch_dtype=self.torch.float32)
        self.model = model.to(self.device).eval()
        self.pooling, self.normalize = pooling, normalize
        return type(model).__name__ + " attn=" + str(getattr(model.config, "_attn_implementation", "?"))

    def embed(self, batch_ids):
        """Left-pads like the tokenizer with padding_side='left' and returns float32 [B, H]."""
        torch = self.torch
        T = max(len(x) for x in batch_ids)
        ids = torch.full((len(batch_ids), T), PAD_ID, dtype=torch.int64)
        mask = torch.zeros((len(batch_ids), T), dtype=torch.int64)
        for r, x in enumerate(batch_ids):
            ids[r, T - len(x):] = torch.tensor(x)
            mask[r, T - len(x):] = 1
        with torch.no_grad():
            out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device))
            v = pool(out.last_hidden_state.float(), mask.to(self.device), self.pooling)
            if self.normalize:
                v = torch.nn.functional.normalize(v, p=2, dim=1)
        return v.cpu().numpy().astype(np.float32)


class NumpyBackend:
    origin = "numpy float64 reference (tools/numpy_qwen3_reference.py); INTERIM, not transformers"

    def load(self, model_dir, pooling, normalize):
        self.ref = numpy_qwen3_reference.load_model(model_dir)
        return "numpy_qwen3_reference"

    def embed(self, batch_ids):
        return np.stack([self.ref.embed(x) for x in batch_ids]).astype(np.float32)


def cosines(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)


def sentence_transformers_check(model_dir, texts, device, ours):
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        return f"sentence-transformers not importable ({e})"
    import sentence_transformers
    try:
        st = SentenceTransformer(model_dir, device=device, model_kwargs={"dtype": torch.float32})
        theirs = st.encode(texts, batch_size=8, convert_to_numpy=True, normalize_embeddings=False)
    except Exception as e:  # a cross-check only: report, keep the transformers fixtures
        return f"sentence-transformers {sentence_transformers.__version__} failed: {type(e).__name__}: {e}"
    return (f"sentence-transformers {sentence_transformers.__version__}: max |diff| "
            f"{np.abs(theirs - ours).max():.2e}, min cosine {cosines(theirs, ours).min():.9f}")


def dump(path, head, key, items):
    """One JSON document with one item of the list `key` per line, so fixture diffs stay readable."""
    text = json.dumps(head, ensure_ascii=False)[:-1] + f', "{key}": [\n'
    text += ",\n".join(json.dumps(x, separators=(",", ":")) for x in items) + "\n]}\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def fmt(v):
    return [float(f"{x:.9g}") for x in v]  # 9 significant digits round-trip a float32


def model_digests(model_dir):
    """sha256 of the files the model is made of, so CI can prove it rebuilt the very model measured here."""
    out = {}
    for f in sorted(os.listdir(model_dir)):
        if f.endswith(".safetensors") or f in ("config.json", "model.safetensors.index.json"):
            with open(os.path.join(model_dir, f), "rb") as fh:
                out[f] = hashlib.sha256(fh.read()).hexdigest()
    return out


def run_preset(name, backend, texts, ids, args, workdir):
    model_dir = os.path.join(workdir, name)
    make_random_model.main(["--preset", name, "--out", model_dir])
    digests = model_digests(model_dir)
    margs = dict(make_random_model.DEFAULTS)
    margs.update(make_random_model.PRESETS[name])
    vocab = margs["vocab_size"]
    desc = backend.load(model_dir, margs["pooling"], margs["normalize"])

    ok = [i for i in range(len(texts)) if max(ids[i]) < vocab]
    # Batches of 8 sorted by length, longest first, as sentence-transformers' encode() does.
    order = sorted(ok, key=lambda i: -len(ids[i]))
    vecs = {}
    t0 = time.time()
    for s in range(0, len(order), args.batch_size):
        chunk = order[s:s + args.batch_size]
        for i, v in zip(chunk, backend.embed([ids[i] for i in chunk])):
            vecs[i] = v
    elapsed = time.time() - t0
    ours = np.stack([vecs[i] for i in ok])

    report = [f"{name}: {desc}, {len(ok)} vectors, {len(texts) - len(ok)} out-of-vocabulary, {elapsed:.1f}s"]
    if isinstance(backend, NumpyBackend):  # numpy embeds one sequence at a time: nothing more to compare
        return finish(texts, ids, vecs, vocab), margs, digests, report
    alone = np.stack([backend.embed([ids[i]])[0] for i in ok])
    report.append(f"  batched vs alone: max |diff| {np.abs(alone - ours).max():.2e}, "
                  f"min cosine {cosines(alone, ours).min():.9f}")
    if not args.no_numpy_check:
        ref = numpy_qwen3_reference.load_model(model_dir)
        npv = np.stack([ref.embed(ids[i]) for i in ok])
        report.append(f"  vs numpy float64 reference: max |diff| {np.abs(npv - ours).max():.2e}, "
                      f"min cosine {cosines(npv, ours).min():.9f}")
    if not args.no_st_check:
        report.append("  " + sentence_transformers_check(model_dir, [texts[i] for i in ok], args.device, ours))
    return finish(texts, ids, vecs, vocab), margs, digests, report


def finish(texts, ids, vecs, vocab):
    """The fixture's per-text entries: a vector, or the error an engine must give (id past the table)."""
    vectors = []
    for i in range(len(texts)):
        if i in vecs:
            vectors.append({"index": i, "num_tokens": len(ids[i]), "embedding": fmt(vecs[i])})
        else:
            bad = max(ids[i])
            vectors.append({"index": i, "num_tokens": len(ids[i]),
                            "error": f"token id {bad} is not below vocab_size {vocab}"})
    return vectors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", choices=["transformers", "numpy"], default="transformers")
    ap.add_argument("--device", default="cpu", help="torch device for the transformers backend (cpu is exact)")
    ap.add_argument("--presets", nargs="*", default=sorted(make_random_model.PRESETS))
    ap.add_argument("--out-dir", default=os.path.join(REPO, "tests", "data", "reference"))
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--no-numpy-check", action="store_true")
    ap.add_argument("--no-st-check", action="store_true")
    args = ap.parse_args()

    backend = TransformersBackend(args.device) if args.backend == "transformers" else NumpyBackend()
    texts, sha = load_texts()
    os.makedirs(args.out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        make_random_model.main(["--preset", args.presets[0], "--out", os.path.join(work, "tok")])
        ids, tok_note = tokenize(os.path.join(work, "tok"), texts, args.backend == "transformers")
        print(f"{len(texts)} texts, {sum(map(len, ids))} tokens (longest {max(map(len, ids))}); {tok_note}")
        dump(os.path.join(args.out_dir, "token_ids.json"),
             {"origin": tok_note, "texts": "tests/data/reference_texts.jsonl", "texts_sha256": sha}, "token_ids", ids)
        for name in args.presets:
            vectors, margs, digests, report = run_preset(name, backend, texts, ids, args, work)
            print("\n".join(report))
            doc = {"origin": backend.origin, "cross_checks": [r.strip() for r in report[1:]],
                   "preset": name, "model_args": margs, "model_sha256": digests, "texts": "tests/data/reference_texts.jsonl",
                   "texts_sha256": sha}
            dump(os.path.join(args.out_dir, name + ".json"), doc, "vectors", vectors)
    total = sum(os.path.getsize(os.path.join(args.out_dir, f)) for f in os.listdir(args.out_dir))
    print(f"wrote {args.out_dir} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
