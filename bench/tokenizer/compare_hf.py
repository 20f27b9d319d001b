#!/usr/bin/env python3
"""Tokens/s of embedserve's tokenizer vs HF tokenizers on the same corpus: single thread and a batch over all cores.

Usage: compare_hf.py [--bench build/bench/tokenizer/tokenizer_bench] [--corpus FILE.jsonl] [--threads N ...]
Without --corpus it builds one with tools/make_tokenizer_corpus.py. Prints one table (markdown).
Both sides get one warm-up pass (HF's BPE cache and ours fill up) and report the best of three timed passes.
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKENIZER = ROOT / "tests" / "data" / "qwen3-tokenizer" / "tokenizer.json"


def best_of(fn, reps=3):
    fn()  # warm-up
    best = None
    for _ in range(reps):
        t0 = time.perf_counter()
        n = fn()
        dt = time.perf_counter() - t0
        if best is None or dt < best[0]:
            best = (dt, n)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default=str(ROOT / "build" / "bench" / "tokenizer" / "tokenizer_bench"))
    ap.add_argument("--corpus")
    ap.add_argument("--threads", type=int, nargs="*", default=None)
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    threads = args.threads or sorted({1, cores})

    corpus = args.corpus
    if not corpus:
        corpus = os.path.join(tempfile.mkdtemp(), "corpus.jsonl")
        subprocess.run([sys.executable, str(ROOT / "tools" / "make_tokenizer_corpus.py"), corpus,
                        "--special-tokens", str(TOKENIZER)], check=True, stderr=subprocess.DEVNULL)
    texts = [json.loads(line)["text"] for line in open(corpus, encoding="utf-8").read().split("\n") if line]
    mbytes = sum(len(t.encode()) for t in texts) / 1e6

    rows = []  # (implementation, mode, threads, tokens/s, MB/s)
    out = subprocess.run([args.bench, str(TOKENIZER), corpus, *map(str, threads)], check=True,
                         capture_output=True, text=True).stdout
    for m in re.finditer(r"threads=(\d+) tokens=(\d+) seconds=([\d.]+)", out):
        t, n, s = int(m[1]), int(m[2]), float(m[3])
        rows.append(("embedserve", "encode, 1 thread" if t == 1 else f"encode, {t} threads", t, n / s, mbytes / s))

    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(TOKENIZER))
    dt, n = best_of(lambda: sum(len(tok.encode(t).ids) for t in texts))
    rows.append(("HF tokenizers", "encode, 1 thread", 1, n / dt, mbytes / dt))
    for t in threads:
        if t == 1:
            continue
        # encode_batch parallelises with rayon over RAYON_NUM_THREADS (default: all cores).
        env_t = os.environ.get("RAYON_NUM_THREADS")
        dt, n = best_of(lambda: sum(len(e.ids) for e in tok.encode_batch(texts)))
        rows.append(("HF tokenizers", f"encode_batch ({env_t or 'all'} rayon threads)", t, n / dt, mbytes / dt))

    hf1 = next(r[3] for r in rows if r[0] == "HF tokenizers" and r[2] == 1)
    print(f"corpus: {len(texts)} texts, {mbytes:.2f} MB; machine: {platform.processor() or platform.machine()}, "
          f"{cores} cores")
    print("| implementation | mode | threads | tokens/s | MB/s | vs HF 1 thread |")
    print("|---|---|---|---|---|---|")
    for impl, mode, t, tps, mbs in rows:
        print(f"| {impl} | {mode} | {t} | {tps:,.0f} | {mbs:.2f} | {tps / hf1:.2f}x |")


if __name__ == "__main__":
    main()
