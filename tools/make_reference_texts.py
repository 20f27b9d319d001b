#!/usr/bin/env python3
"""Writes tests/data/reference_texts.jsonl: the texts the transformers parity fixtures are computed on.

Short texts exercise the tokenizer and the model's edge cases (empty text, one character, whitespace runs,
NFC, CJK, right-to-left scripts, emoji ZWJ sequences, code, digits, special-token text, the query instruction
format); long texts (over 2,000 tokens, built deterministically by concatenating the short ones) exercise
RoPE at far positions and long causal attention. Rerun after editing; the output is deterministic.
"""

import json
import os

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "tests", "data", "reference_texts.jsonl")

SHORT = [
    "",
    "a",
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France?",
    "Instruct: Given a web search query, retrieve relevant passages that answer the query\nQuery:What is the capital of China?",
    "Instruct: Given a question, retrieve Wikipedia passages that answer the question\nQuery:Explain gravity",
    "The capital of China is Beijing.",
    "Gravity is a force that attracts two bodies towards each other. It gives weight to physical objects.",
    "I'm sure you'll agree: they've said it's what we'd do, isn't it?",
    "   leading and trailing spaces   ",
    "tabs\tand\t\tmultiple    spaces\n\nand blank lines\r\nwith CRLF\r\n",
    "\n",
    "          ",
    "3.14159265358979323846264338327950288419716939937510 and 1,234,567.89 and 2026-11-26T10:50:00Z",
    "北京是中华人民共和国的首都，也是全国的政治和文化中心。",
    "機械学習は人工知能の一分野です。ひらがなとカタカナも混ざっています。",
    "안녕하세요, 세계! 한국어 문장입니다.",
    "Москва — столица России, город федерального значения.",
    "القاهرة هي عاصمة جمهورية مصر العربية وأكبر مدنها.",
    "हिन्दी भारत की एक आधिकारिक भाषा है।",
    "Größenwahn über Äpfel, Öl und Übermut — ß ẞ",
    "Cafe\u0301 vs Café: the first spells é with a combining accent (NFC makes them equal)",
    "Ελληνικά: Η γρήγορη καφέ αλεπού πηδάει.",
    "emoji: 😀🎉👍🏽 family 👨‍👩‍👧‍👦 flag 🇫🇷 keycap 1️⃣ heart ❤️",
    "🤖",
    "def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    "template <typename T>\nT max(T a, T b) { return a > b ? a : b; }  // C++\n",
    '{"key": [1, 2, 3], "nested": {"ok": true, "null": null}}',
    "SELECT name, COUNT(*) FROM users WHERE age >= 18 GROUP BY name ORDER BY 2 DESC;",
    "<|endoftext|> is Qwen's end-of-text token written as text",
    "Let me think. <think>The user asks about planets.</think> Mars is the fourth planet.",
    "<|im_start|>user\nHi there<|im_end|>",
    "https://example.com/path?query=1&lang=en#fragment user@example.org",
    "ALL CAPS SENTENCE WITH NUMBERS 12345 AND SYMBOLS !@#$%^&*()",
    "mixed English 和中文 and русский in one line",
    "a" * 300,
    "ab " * 120,
    "\u200b zero\u200bwidth\u00a0nbsp\u2028line-separator",
    "Tiếng Việt có dấu: Hà Nội là thủ đô của Việt Nam.",
    "שלום עולם, זה משפט בעברית.",
    "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ",
    "Matrix multiplication: C[i][j] = Σ_k A[i][k]·B[k][j] for 0 ≤ i < m, 0 ≤ j < n.",
    "Short query",
    "Embeddings map text to vectors so that similar meanings are close in cosine distance.",
]


def long_text(seed, paragraphs):
    """Concatenates short texts in a seed-dependent order, numbered so that no two paragraphs repeat."""
    parts = []
    for i in range(paragraphs):
        t = SHORT[(seed * 7 + i * 11) % len(SHORT)]
        parts.append(f"Paragraph {i + 1} (seed {seed}): {t}")
    return "\n\n".join(parts)


def main():
    texts = list(SHORT)
    # Over 2,000 tokens each with the Qwen3 tokenizer (make_reference_embeddings.py reports the counts).
    texts.append(long_text(1, 70))
    texts.append(long_text(2, 90))
    texts.append(("Paris is the capital and largest city of France. " * 260).strip())
    texts.append("\n".join(SHORT[26] + f"# block {i}" for i in range(55)))
    with open(OUT, "w", encoding="utf-8") as f:
        for t in texts:
            f.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    print(f"wrote {len(texts)} texts to {OUT}")


if __name__ == "__main__":
    main()
