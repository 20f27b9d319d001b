#!/usr/bin/env python3
"""Asks the installed HF tokenizers which Unicode versions its regex and its NFC use, per code point.

1. Classifies every code point as \\p{L}, \\p{N}, \\s or other through HF's own Split pre-tokenizer (Qwen2's
   pattern), compares with the UCD in /usr/share/unicode, and prints the ranges HF knows as L/N that the UCD
   leaves unassigned: src/tokenizer/unicode/ucd16_letter_number_additions.txt is this output.
2. Finds the newest Unicode version whose combining marks HF's NFC reorders, by DerivedAge: the
   generator's NFC_UNICODE_VERSION must match (9.0 for tokenizers 0.23).
3. Checks that the case-insensitive contractions fold only ASCII and U+017F.

Usage: probe_hf_unicode.py [UCD_DIR]   (takes ~15 s)
"""
import sys
import unicodedata

from tokenizers import Regex, normalizers, pre_tokenizers

PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
           r"\s*[\r\n]+|\s+(?!\S)|\s+")


def ucd_categories(ucd):
    cat, first = {}, None
    for line in open(f"{ucd}/UnicodeData.txt", encoding="utf-8"):
        f = line.split(";")
        cp = int(f[0], 16)
        if f[1].endswith("First>"):
            first = cp
            continue
        for c in (range(first, cp + 1) if f[1].endswith("Last>") else (cp,)):
            cat[c] = f[2]
    return cat


def ages(ucd):
    age = {}
    for line in open(f"{ucd}/DerivedAge.txt", encoding="utf-8"):
        line = line.split("#")[0].strip()
        if line:
            r, v = (x.strip() for x in line.split(";"))
            a, b = (r.split("..") + [r])[:2]
            for c in range(int(a, 16), int(b, 16) + 1):
                age[c] = tuple(map(int, v.split(".")))
    return age


def main():
    ucd = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/unicode"
    split = pre_tokenizers.Split(Regex(PATTERN), "isolated")

    def pieces(s):
        return len(split.pre_tokenize_str(s))

    cat = ucd_categories(ucd)
    ranges = []
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF or cp in (10, 13):
            continue
        x = chr(cp)
        # "!x" is one piece for a letter ([^...]?\p{L}+) or an "other" (symbol run); "x!" tells them apart.
        # Otherwise x is a number (xx -> two pieces) or whitespace (xx -> one piece).
        if pieces("!" + x) == 1:
            hf = "L" if pieces(x + "!") == 2 else "O"
        else:
            hf = "N" if pieces(x + x) == 2 else "W"
        ours = cat.get(cp, "Cn")[0]
        if hf in "LN" and ours != hf:
            if cat.get(cp, "Cn") != "Cn":
                print(f"# U+{cp:04X}: HF says {hf}, UCD says {cat[cp]} (a category change, not an addition)")
            if ranges and ranges[-1][1] == cp - 1 and ranges[-1][2] == hf:
                ranges[-1][1] = cp
            else:
                ranges.append([cp, cp, hf])
    for a, b, c in ranges:
        print(f"{a:04X}..{b:04X} ; {c}")

    nfc = normalizers.NFC()
    age = ages(ucd)
    reordered = set()
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF or not unicodedata.combining(chr(cp)) or unicodedata.combining(chr(cp)) <= 1:
            continue
        # A mark of class > 1 after U+093C (class 7) is left in place; one HF does not know (class 0) also
        # stays; but one before U+093C moves behind it only if HF knows its class.
        if nfc.normalize_str(chr(cp) + "\u093c") != chr(cp) + "\u093c":
            reordered.add(age[cp])
    print(f"# NFC: combining marks reordered up to Unicode {'.'.join(map(str, max(reordered)))}", file=sys.stderr)

    folds = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF and c not in (10, 13)
             and split.pre_tokenize_str("'" + chr(c) + "\u4e00")[0][0] == "'" + chr(c)
             and unicodedata.category(chr(c))[0] == "L"]
    print(f"# contraction letters: {''.join(folds)}", file=sys.stderr)


if __name__ == "__main__":
    main()
