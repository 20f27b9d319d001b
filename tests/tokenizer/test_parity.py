"""Parity: `embedserve tokenize` must give exactly HF tokenizers' ids on the whole Debian-built corpus.

Runs with CTest (tests/tokenizer/CMakeLists.txt passes EMBEDSERVE_BIN). The corpus comes from
tools/make_tokenizer_corpus.py (>= 1 MB, >= 5,000 cases); each mode below is compared case by case and
the first differing cases are printed with their texts and both id lists.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[2]
TOKENIZER = ROOT / "tests" / "data" / "qwen3-tokenizer" / "tokenizer.json"
BIN = os.environ.get("EMBEDSERVE_BIN", str(ROOT / "build" / "embedserve"))

# (flags for embedserve tokenize, add_special_tokens, max_length for HF or None)
MODES = [
    ([], True, None),
    (["--no-special"], False, None),
    (["--max-length", "1"], True, 1),
    (["--max-length", "2"], True, 2),
    (["--max-length", "37"], True, 37),
    (["--max-length", "512"], True, 512),
    (["--no-special", "--max-length", "64"], False, 64),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "corpus.jsonl"
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_tokenizer_corpus.py"), str(path),
                    "--special-tokens", str(TOKENIZER)], check=True)
    texts = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").split("\n") if line]
    return path, texts


def test_corpus_is_large_and_varied(corpus):
    path, texts = corpus
    assert len(texts) >= 5000
    assert path.stat().st_size >= 1_000_000
    assert max(len(t) for t in texts) >= 100_000


def reference_ids(texts, add_special, max_length):
    tok = Tokenizer.from_file(str(TOKENIZER))
    if max_length is not None:
        tok.enable_truncation(max_length=max_length)
    return [e.ids for e in tok.encode_batch(texts, add_special_tokens=add_special)]


@pytest.mark.parametrize("flags,add_special,max_length", MODES, ids=lambda m: " ".join(m) if isinstance(m, list) else None)
def test_ids_identical_to_hf(corpus, flags, add_special, max_length):
    path, texts = corpus
    with open(path, "rb") as stdin:
        run = subprocess.run([BIN, "tokenize", "--tokenizer", str(TOKENIZER), *flags], stdin=stdin,
                             capture_output=True, check=False)
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    ours = [json.loads(line)["ids"] for line in run.stdout.decode().split("\n") if line]
    theirs = reference_ids(texts, add_special, max_length)
    assert len(ours) == len(texts)
    bad = [i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b]
    for i in bad[:5]:
        first = next((k for k, (a, b) in enumerate(zip(ours[i], theirs[i])) if a != b), min(len(ours[i]), len(theirs[i])))
        print(f"case {i}: text[:200]={texts[i][:200]!r}\n  first difference at id #{first}:"
              f" ours {ours[i][max(0, first - 3):first + 5]} HF {theirs[i][max(0, first - 3):first + 5]}")
    matched = len(texts) - len(bad)
    print(f"{' '.join(flags) or 'default'}: {matched}/{len(texts)} cases identical ({100.0 * matched / len(texts):.2f}%)")
    assert not bad, f"{len(bad)} of {len(texts)} cases differ from HF tokenizers (first: case {bad[0]})"
