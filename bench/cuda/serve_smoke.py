#!/usr/bin/env python3
"""The server on the GPU backend, end to end: `embedserve serve` with `--device auto` on a GPU machine must pick
CUDA and answer like the CPU engine (the callers are unchanged; only create_engine chose another backend).

Usage: serve_smoke.py --bin build/embedserve [--model DIR]   (without --model it builds tools' tiny-bf16 preset)
Checks, each printed with its number: the start-up log names cuda; float and base64 answers are bitwise equal;
`dimensions` gives a unit vector of that length; a text's vector is bitwise the same alone and inside a mixed
batch; an id past the vocabulary is a 400 in OpenAI's error shape; and the GPU vectors agree with
`embedserve embed --device cpu` (f32 CPU engine) to a cosine stated per dtype. Exits non-zero on any failure.
"""
import argparse
import base64
import json
import pathlib
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEXTS = ["hello world", "Instruct: find code\nQuery:how to sort a list in C++", "你好，世界", "a" * 700,
         "Les embeddings multilingues 🚀", "   "]


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / ((sum(x * x for x in a) ** 0.5) * (sum(y * y for y in b) ** 0.5))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=str(ROOT / "build" / "embedserve"))
    ap.add_argument("--model")
    args = ap.parse_args()
    work = pathlib.Path(tempfile.mkdtemp())
    model = args.model
    if not model:
        model = str(work / "tiny")
        subprocess.run([sys.executable, str(ROOT / "tools" / "make_random_model.py"), "--out", model,
                        "--preset", "tiny-bf16"], check=True, stdout=subprocess.DEVNULL)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    log = open(work / "serve.log", "wb")
    proc = subprocess.Popen([args.bin, "serve", "--model-path", model, "--port", str(port)], stdout=log,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    failures = []

    def check(ok, what):
        print(("PASS " if ok else "FAIL ") + what, flush=True)
        if not ok:
            failures.append(what)

    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        startup = (work / "serve.log").read_text()
        ready = next((line for line in startup.splitlines() if "ready in" in line), startup.strip())
        check(" on cuda" in ready, "serve --device auto chose CUDA: " + ready)
        name = pathlib.Path(model).name
        st, floats = post(base + "/v1/embeddings", {"model": name, "input": TEXTS})
        check(st == 200, f"float request: HTTP {st}")
        vecs = [d["embedding"] for d in floats["data"]]
        st, b64 = post(base + "/v1/embeddings", {"model": name, "input": TEXTS, "encoding_format": "base64"})
        decoded = [list(struct.unpack(f"<{len(v)}f", base64.b64decode(d["embedding"])))
                   for v, d in zip(vecs, b64["data"])]
        # JSON carries each float32 as its shortest round-trip decimal: round it back to float32 to compare bits.
        as_f32 = [list(struct.unpack(f"<{len(v)}f", struct.pack(f"<{len(v)}f", *v))) for v in vecs]
        check(decoded == as_f32, "base64 decodes to the float answers bitwise")
        st, dims = post(base + "/v1/embeddings", {"model": name, "input": TEXTS[0], "dimensions": 16})
        v16 = dims["data"][0]["embedding"]
        check(len(v16) == 16 and abs(sum(x * x for x in v16) - 1) < 1e-5, f"dimensions=16: length {len(v16)}")
        for i, t in enumerate(TEXTS):
            st, alone = post(base + "/v1/embeddings", {"model": name, "input": t})
            check(alone["data"][0]["embedding"] == vecs[i], f"text {i} bitwise equal alone and in the batch")
        st, err = post(base + "/v1/embeddings", {"model": name, "input": [[1, 2, 10 ** 6]]})
        shape_ok = isinstance(err.get("error"), dict) and {"message", "type", "param", "code"} <= err["error"].keys()
        check(st == 400 and shape_ok, f"id past the vocabulary: HTTP {st} {json.dumps(err)[:120]}")
    finally:
        proc.terminate()
        check(proc.wait(timeout=60) == 0, "SIGTERM: exit 0")

    inp = work / "texts.jsonl"
    inp.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS))
    subprocess.run([args.bin, "embed", "--model-path", model, "--input", str(inp), "--output",
                    str(work / "cpu.jsonl"), "--device", "cpu"], check=True, stderr=subprocess.DEVNULL)
    cpu = [json.loads(line)["embedding"] for line in (work / "cpu.jsonl").read_text().splitlines()]
    worst = min(cosine(a, b) for a, b in zip(vecs, cpu))
    # bf16 activations against the f32 CPU engine: bf16 keeps 8 bits of mantissa per rounding; the parity
    # suite's bf16 bar is 0.999 (docs/PERFORMANCE.md, CUDA engine).
    check(worst >= 0.999, f"GPU (bf16) vs CPU (f32) vectors: min cosine {worst:.6f}")
    print(f"{len(failures)} failed" if failures else "all checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
