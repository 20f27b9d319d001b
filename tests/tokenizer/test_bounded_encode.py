"""Truncation tokenises only what it keeps: `embedserve tokenize --max-length` on long texts (words of 100+ KB,
runs of spaces, punctuation, non-NFC text, added tokens) gives Hugging Face tokenizers' ids for the whole text,
from either side, while merging only a bounded window of an over-long word."""
import json
import os
import random
import subprocess
import time
from pathlib import Path

import pytest

tokenizers = pytest.importorskip("tokenizers")

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = ROOT / "tests" / "data" / "qwen3-tokenizer"
BIN = os.environ.get("EMBEDSERVE_BIN", str(ROOT / "build" / "embedserve"))


def long_texts():
    rng = random.Random(13)
    letters = "abcdefghijklmnopqrstuvwxyz"
    yield "one random word", "".join(rng.choice(letters) for _ in range(150_000))
    yield "one repeated letter", "a" * 150_000
    yield "a word of capitals and accents", "".join(rng.choice("ABCÉÈÀÔÜßœ") for _ in range(60_000))
    yield "CJK with no spaces", "".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(40_000))
    yield "Cyrillic word", "".join(chr(rng.randrange(0x430, 0x44F)) for _ in range(60_000))
    yield "punctuation run", "".join(rng.choice("-=*#/.,;:!?") for _ in range(100_000))
    yield "spaces then a word", " " * 100_000 + "word"
    yield "spaces and newlines", "".join(rng.choice(" \n\t\r") for _ in range(100_000)) + "x"
    yield "non-NFC text", "".join(rng.choice(["e\u0301", "a\u0308", "\u1100\u1161\u11a8", "o\u0302\u0323", " ", "x"])
                                  for _ in range(60_000))
    yield "prose with added tokens", " ".join(
        rng.choice(["hello", "world", "<|im_start|>", "embedding", "42", "naïve", "<think>", "\n"])
        for _ in range(40_000))
    yield "a short text among long ones", "Hello world, how are you?"


def ours(texts, max_length, side):
    stdin = "".join(json.dumps({"text": t}) + "\n" for t in texts).encode()
    run = subprocess.run([BIN, "tokenize", "--tokenizer", str(MODEL_DIR), "--max-length", str(max_length),
                          "--truncation-side", side], input=stdin, capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr.decode()
    return [json.loads(line)["ids"] for line in run.stdout.decode().splitlines()]


@pytest.mark.parametrize("side", ["right", "left"])
def test_truncated_ids_equal_hf_for_the_whole_text(side):
    hf = tokenizers.Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
    named = list(long_texts())
    texts = [t for _, t in named]
    for max_length in (1, 2, 9, 300, 4000):
        hf.enable_truncation(max_length=max_length, direction=side)
        expected = [e.ids for e in hf.encode_batch(texts)]
        got = ours(texts, max_length, side)
        for (name, _), g, e in zip(named, got, expected):
            assert g == e, f"{name}, max_length {max_length}, {side}: first difference at {next((i for i, (a, b) in enumerate(zip(g, e)) if a != b), min(len(g), len(e)))}"


def test_truncating_a_huge_word_costs_what_the_kept_part_does():
    # 10 MB in one word: merging it whole takes ~10 s and a gigabyte; keeping 512 ids takes ~0.5 s (most of it
    # reading the JSON line), so 3 s leaves room for a loaded CI machine.
    stdin = (json.dumps({"text": "ab" * 5_000_000}) + "\n").encode()
    for side in ("right", "left"):
        start = time.monotonic()
        run = subprocess.run([BIN, "tokenize", "--tokenizer", str(MODEL_DIR), "--max-length", "512",
                              "--truncation-side", side], input=stdin, capture_output=True, timeout=120)
        elapsed = time.monotonic() - start
        assert run.returncode == 0, run.stderr.decode()
        assert len(json.loads(run.stdout)["ids"]) == 512
        assert elapsed < 3, f"{side}: {elapsed:.1f} s"
