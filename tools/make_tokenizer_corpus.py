#!/usr/bin/env python3
"""Builds the tokenizer parity/benchmark corpus (JSON Lines {"text": ...}) from what a Debian machine carries.

Deterministic: the same machine contents and --seed give the same file. Sources, each capped so no one
kind dominates: localized man pages (/usr/share/man/<lang>/, gzipped), C headers (/usr/include), Python's
standard library, licences (/usr/share/common-licenses, /usr/share/doc/*/copyright), Python's CJK codec test
texts, emoji and ZWJ sequences (unicode-data's emoji files), every code point of planes 0-3 and 14 in
context, seeded random text across all planes, combining-mark and Hangul-jamo stress for NFC, whitespace
and digit runs, contractions, added/special tokens inside text, and a few inputs of 100k+ characters.

Usage: make_tokenizer_corpus.py OUT.jsonl [--seed N] [--special-tokens tokenizer.json]
"""
import argparse
import glob
import gzip
import json
import os
import random
import sys

MAN_CAP_PER_LANG = 40_000  # characters per man-page language
SOURCE_CAP = 150_000
LICENCE_CAP = 120_000


def chunks(text, rng, lo=40, hi=1500):
    """Splits text into pieces of random length, cutting at line ends where possible."""
    out, pos = [], 0
    while pos < len(text):
        n = rng.randint(lo, hi)
        end = text.find("\n", pos + n)
        end = len(text) if end < 0 or end - pos > 2 * hi else end + 1
        piece = text[pos:end]
        if piece.strip():
            out.append(piece)
        pos = end
    return out


def read_text(path, gz=False):
    try:
        raw = gzip.open(path).read() if gz else open(path, "rb").read()
    except OSError:
        return ""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # old man pages: still text, and it exercises Latin-1 letters


def capped(paths, cap, rng, gz=False):
    out, total = [], 0
    for p in paths:
        for piece in chunks(read_text(p, gz), rng):
            out.append(piece)
            total += len(piece)
            if total >= cap:
                return out
    return out


def man_pages(rng):
    cases = []
    for lang_dir in sorted(glob.glob("/usr/share/man/*/")):
        lang = os.path.basename(lang_dir.rstrip("/"))
        if lang.startswith("man"):
            continue
        files = sorted(glob.glob(os.path.join(lang_dir, "man*", "*.gz")))
        cases += capped(files, MAN_CAP_PER_LANG, rng, gz=True)
    english = sorted(glob.glob("/usr/share/man/man[1-8]/*.gz"))
    cases += capped(english, MAN_CAP_PER_LANG, rng, gz=True)
    return cases


def source_code(rng):
    headers = sorted(glob.glob("/usr/include/*.h")) + sorted(glob.glob("/usr/include/c++/*/bits/*.h"))
    stdlib = os.path.dirname(os.__file__)
    python = sorted(glob.glob(os.path.join(stdlib, "*.py")))
    return capped(headers, SOURCE_CAP, rng) + capped(python, SOURCE_CAP, rng)


def licences(rng):
    files = sorted(glob.glob("/usr/share/common-licenses/*")) + sorted(glob.glob("/usr/share/doc/*/copyright"))
    return capped([f for f in files if os.path.isfile(f)], LICENCE_CAP, rng)


def cjk_texts(rng):
    import test

    d = os.path.join(os.path.dirname(test.__file__), "cjkencodings")
    cases = []
    for path in sorted(glob.glob(os.path.join(d, "*-utf8.txt"))):
        text = read_text(path)
        cases.append(text)
        cases += chunks(text, rng, 10, 300)
    return cases


def emoji(rng):
    seqs = []
    for name in ("emoji-zwj-sequences.txt", "emoji-sequences.txt"):
        path = os.path.join("/usr/share/unicode/emoji", name)
        if not os.path.exists(path):
            continue
        for line in open(path, encoding="utf-8"):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            field = line.split(";")[0].strip()
            if ".." in field:
                a, b = (int(x, 16) for x in field.split(".."))
                seqs += [chr(c) for c in range(a, min(b, a + 20) + 1)]
            else:
                seqs.append("".join(chr(int(x, 16)) for x in field.split()))
    words = ["love", "the", "party", "ok", "日本", "привет", "", " ", "\n", "!!", "123"]
    cases = []
    for i in range(0, len(seqs), 7):
        cases.append("".join(rng.choice(["", " ", "\u200d", "\ufe0f"]) + s for s in seqs[i:i + 7]))
    for _ in range(400):
        cases.append(" ".join(rng.choice(seqs) + rng.choice(words) for _ in range(rng.randint(1, 12))))
    return cases


def all_code_points(rng):
    """Every code point of planes 0-3 and 14 (and a sample of 4-16), each between context characters,
    so each one's letter/number/space class, NFC behaviour and byte-level BPE meet the reference."""
    cps = [c for c in range(0x40000) if not 0xD800 <= c <= 0xDFFF] + list(range(0xE0000, 0xE1000))
    cps += rng.sample(range(0x40000, 0x110000), 4000)
    contexts = ["", " ", "a", "1", "'", "\u0301", "\n", "\u3000", "x "]
    cases = []
    for i in range(0, len(cps), 256):
        cases.append("".join(chr(c) + contexts[(c * 7 + i) % len(contexts)] for c in cps[i:i + 256]))
    return cases


def random_planes(rng):
    cases = []
    for _ in range(600):
        n = rng.randint(1, 80)
        s = []
        for _ in range(n):
            plane = rng.choice([0, 0, 0, 1, 2, 3, 14, 15, 16])
            c = rng.randrange(plane << 16, (plane + 1) << 16)
            if 0xD800 <= c <= 0xDFFF:
                c = 0xFFFD
            s.append(chr(c))
        cases.append("".join(s))
    return cases


def nfc_stress(rng):
    marks = [0x300, 0x301, 0x302, 0x303, 0x308, 0x30A, 0x316, 0x323, 0x327, 0x328, 0x345, 0x35C, 0x35D,
             0x5B0, 0x5B9, 0x64B, 0x650, 0x93C, 0x94D, 0x9BE, 0x9D7, 0xB3E, 0xB56, 0xB57, 0xBBE, 0xBD7,
             0xCD5, 0xCD6, 0xDCF, 0xDDF, 0x102E, 0x1B35, 0x3099, 0x309A, 0x1D165, 0x1D16E, 0x1AB0, 0x1DC0,
             0x7FD, 0x8D3, 0x1AC1, 0xD3B, 0x11930, 0x11935, 0x1133E, 0x11357, 0x114BA, 0x115AF, 0x20D0, 0xFE20]
    bases = "aAeEiIoOuUnNcCsSzZyYwW" + "αεηιουωΑΕΗΙΟΥΩ" + "абвгдеиоуАЕИОУ" + "かきくけこはひふへほカキ" + \
        "\u0915\u0b47\u0bc6\u0bc6\u09c7\u0cc6\u0dd9\u1025\u1b05\u11131\u11132\u11347\u114B9\u115B8\u11935"
    cases = []
    for _ in range(600):
        s = []
        for _ in range(rng.randint(1, 20)):
            s.append(rng.choice(bases))
            s += [chr(rng.choice(marks)) for _ in range(rng.choice([0, 0, 1, 1, 2, 3, 5]))]
            if rng.random() < 0.2:
                s.append(" ")
        cases.append("".join(s))
    for _ in range(300):  # Hangul: precomposed syllables, conjoining jamo L V T, and mixes
        s = []
        for _ in range(rng.randint(1, 30)):
            k = rng.random()
            if k < 0.3:
                s.append(chr(rng.randrange(0xAC00, 0xD7A4)))
            elif k < 0.8:
                s.append(chr(rng.randrange(0x1100, 0x1113)) + chr(rng.randrange(0x1161, 0x1176)))
                if rng.random() < 0.5:
                    s.append(chr(rng.randrange(0x11A7, 0x11C3)))
            else:
                s.append(rng.choice([" ", "\u11a8", "\u1161", "\u3131", "a"]))
        cases.append("".join(s))
    return cases


def whitespace_digits(rng):
    atoms = [" ", "  ", "\t", "\n", "\r\n", "\r", "\n\n", "\u00a0", "\u3000", "\u2009", "\u0085", "\u2028", "\x0b",
             "\x0c", "0", "12", "3456789", "٣", "١٢", "Ⅻ", "½", "a", "word", "Word", "ünï", "'s", "'S", "'ll",
             "'LL", "'Re", "'vE", "'m", "'D", "'t", "'ſ", "'x", "'", "!", "...", "--", "==>", "$", "€", "日本",
             "x\u0301"]
    cases = []
    for _ in range(1500):
        cases.append("".join(rng.choice(atoms) for _ in range(rng.randint(1, 40))))
    return cases


def special_tokens(rng, added):
    filler = ["hello", " world", "\n", " ", "日本語", "<|", "|>", "<", ">", "|", "endoftext", "<think>\n", "x"]
    partial = [t[:-1] for t in added] + [t[1:] for t in added] + ["<|im_start", "<|endoftext|", "<</think>>"]
    cases = []
    for _ in range(800):
        parts = []
        for _ in range(rng.randint(1, 15)):
            k = rng.random()
            parts.append(rng.choice(added) if k < 0.35 else rng.choice(partial) if k < 0.5 else rng.choice(filler))
        cases.append("".join(parts))
    cases += ["".join(added), " ".join(added), "\n".join(added) + "\n", added[0] * 50]
    return cases


def long_inputs(rng, pieces):
    base = "".join(pieces)
    return [
        base[:150_000],
        "日本語のテキスト" * 13_000,
        "".join(rng.choice([" ", "\n", "\t", "  ", "\r\n"]) for _ in range(110_000)),
        "=" * 60_000 + "-" * 50_000 + "\n",
        "".join(rng.choice("0123456789") for _ in range(105_000)),
        "a" * 120_000,
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=20251126)
    ap.add_argument("--special-tokens", help="tokenizer.json whose added tokens to mix into text")
    args = ap.parse_args()
    rng = random.Random(args.seed)

    added = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
    if args.special_tokens:
        with open(args.special_tokens, encoding="utf-8") as f:
            added = [t["content"] for t in json.load(f).get("added_tokens", [])] or added

    groups = {
        "man pages": man_pages(rng),
        "source code": source_code(rng),
        "licences": licences(rng),
        "CJK codec texts": cjk_texts(rng),
        "emoji": emoji(rng),
        "all code points": all_code_points(rng),
        "random planes": random_planes(rng),
        "NFC stress": nfc_stress(rng),
        "whitespace/digits": whitespace_digits(rng),
        "special tokens": special_tokens(rng, added),
    }
    groups["long inputs"] = long_inputs(rng, groups["man pages"] + groups["source code"])
    total_cases = total_chars = 0
    with open(args.out, "w", encoding="utf-8") as out:
        for name, cases in groups.items():
            chars = sum(len(c) for c in cases)
            print(f"{name:18s} {len(cases):6d} cases {chars:9d} chars", file=sys.stderr)
            total_cases += len(cases)
            total_chars += chars
            for c in cases:
                out.write(json.dumps({"text": c}, ensure_ascii=False) + "\n")
    size = os.path.getsize(args.out)
    print(f"{'total':18s} {total_cases:6d} cases {total_chars:9d} chars, {size} bytes -> {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
