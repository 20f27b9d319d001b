"""Prints how much NFC can shrink UTF-8 text, the kMaxNfcShrink bound of src/tokenizer/tokenizer.cc.

NFC(s) = compose(NFD(s)). A code point is at most r1 times as long in UTF-8 as its canonical decomposition, and a
decomposition at most r2 times as long as the code point it composes back to, so |s| <= r1 * r2 * |NFC(s)|.
Python's unicodedata is a newer Unicode than HF's NFC data (9.0); new versions only add decompositions, so the
maxima over the newer data bound the older. Run: python3 tools/nfc_shrink_bound.py
"""
import unicodedata


def main():
    r1 = r2 = 1.0
    r1_at = r2_at = None
    for cp in range(0x110000):
        if 0xD800 <= cp < 0xE000:
            continue
        c = chr(cp)
        d = unicodedata.normalize("NFD", c)
        lc, ld = len(c.encode()), len(d.encode())
        if lc / ld > r1:
            r1, r1_at = lc / ld, cp
        if ld / lc > r2:
            r2, r2_at = ld / lc, cp
    print(f"Unicode {unicodedata.unidata_version}: code point / its decomposition <= {r1} (U+{r1_at:04X}); "
          f"decomposition / code point <= {r2} (U+{r2_at:04X}); NFC shrinks text at most {r1 * r2}-fold")


if __name__ == "__main__":
    main()
