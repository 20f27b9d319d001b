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
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKENIZER = ROOT / "tests" / "data" / "qwen3-tokenizer" / "tokenizer.json"


def cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_SELF)  # rayon's threads are in this process too
    return ru.ru_utime + ru.ru_stime


def best_of(fn, reps=3):
    """(wall seconds, CPU seconds, tokens) of the fastest of `reps` timed runs after one warm-up."""
    fn()
    best = None
    for _ in range(reps):
        t0, c0 = time.perf_counter(), cpu_seconds()
        n = fn()
        dt, dc = time.perf_counter() - t0, cpu_seconds() - c0
        if best is None or dt < best[0]:
            best = (dt, dc, n)
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

    rows = []  # (implementation, mode, threads, tokens/s, MB/s, tokens per CPU-second)
    out = subprocess.run([args.bench, str(TOKENIZER), corpus, *map(str, threads)], check=True,
                         capture_output=True, text=True).stdout
    for m in re.finditer(r"threads=(\d+) tokens=(\d+) seconds=([\d.]+) cpu_seconds=([\d.]+)", out):
        t, n, s, c = int(m[1]), int(m[2]), float(m[3]), float(m[4])
        mode = "encode, 1 thread" if t == 1 else f"encode, {t} threads"
        rows.append(("embedserve", mode, t, n / s, mbytes / s, n / c))

    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(TOKENIZER))
    dt, dc, n = best_of(lambda: sum(len(tok.encode(t).ids) for t in texts))
    rows.append(("HF tokenizers", "encode, 1 thread", 1, n / dt, mbytes / dt, n / dc))
    for t in threads:
        if t == 1:
            continue
        # encode_batch parallelises with rayon over RAYON_NUM_THREADS (default: all cores).
        env_t = os.environ.get("RAYON_NUM_THREADS")
        dt, dc, n = best_of(lambda: sum(len(e.ids) for e in tok.encode_batch(texts)))
        rows.append(("HF tokenizers", f"encode_batch ({env_t or 'all'} rayon threads)", t, n / dt, mbytes / dt, n / dc))

    hf1 = next(r[3] for r in rows if r[0] == "HF tokenizers" and r[2] == 1)
    print(f"corpus: {len(texts)} texts, {mbytes:.2f} MB; machine: {platform.processor() or platform.machine()}, "
          f"{cores} cores")
    print("| implementation | mode | threads | tokens/s | MB/s | vs HF 1 thread | tokens per CPU-second |")
    print("|---|---|---|---|---|---|---|")
    for impl, mode, t, tps, mbs, tpc in rows:
        print(f"| {impl} | {mode} | {t} | {tps:,.0f} | {mbs:.2f} | {tps / hf1:.2f}x | {tpc:,.0f} |")


if __name__ == "__main__":
    main()
