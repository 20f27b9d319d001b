"""`embedserve tokenize` as a user meets it: JSON Lines in and out, flags, and one-line errors naming the line."""
import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MODEL_DIR = ROOT / "tests" / "data" / "qwen3-tokenizer"
BIN = os.environ.get("EMBEDSERVE_BIN", str(ROOT / "build" / "embedserve"))


def tokenize(stdin: bytes, *flags, path=MODEL_DIR):
    return subprocess.run([BIN, "tokenize", "--tokenizer", str(path), *flags], input=stdin, capture_output=True)


def test_lines_in_order_with_and_without_special_tokens():
    stdin = b'{"text": "Hello world"}\n{"text": "<|im_start|>user"}\n{"text": ""}\n'
    run = tokenize(stdin)
    assert run.returncode == 0, run.stderr
    assert [json.loads(l)["ids"] for l in run.stdout.decode().splitlines()] == [
        [9707, 1879, 151643], [151644, 872, 151643], [151643]]
    run = tokenize(stdin, "--no-special", path=MODEL_DIR / "tokenizer.json")
    assert [json.loads(l)["ids"] for l in run.stdout.decode().splitlines()] == [[9707, 1879], [151644, 872], []]


def test_blank_lines_are_skipped_as_embed_skips_them():
    run = tokenize(b'\n{"text": "Hello world"}\n  \r\n\n{"text": "ok"}\n\n')
    assert run.returncode == 0, run.stderr
    assert [json.loads(l)["ids"] for l in run.stdout.decode().splitlines()] == [[9707, 1879, 151643], [562, 151643]]


def test_max_length_keeps_the_eos():
    run = tokenize(b'{"text": "hello world how are you"}\n', "--max-length", "3")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["ids"] == [14990, 1879, 151643]


def test_bad_line_is_a_one_line_error_naming_it():
    run = tokenize(b'{"text": "ok"}\nnot json\n{"text": "never reached"}\n')
    assert run.returncode != 0
    err = run.stderr.decode().strip()
    assert "line 2" in err and len(err.splitlines()) == 1
    assert json.loads(run.stdout.decode().splitlines()[0])["ids"] == [562, 151643]  # the good line still came out

    run = tokenize(b'{"txt": "typo"}\n')
    assert run.returncode != 0 and "line 1" in run.stderr.decode() and '"text"' in run.stderr.decode()

    run = tokenize(b'{"text": "\xff"}\n')  # invalid UTF-8 inside the JSON string
    assert run.returncode != 0 and "line 1" in run.stderr.decode()


def test_bad_flags_and_paths_are_clear():
    run = tokenize(b"", "--max-length", "0")
    assert run.returncode != 0 and "--max-length" in run.stderr.decode()
    run = tokenize(b"", path=ROOT / "no-such-dir")
    assert run.returncode != 0 and "no-such-dir" in run.stderr.decode()
    run = subprocess.run([BIN, "tokenize"], input=b"", capture_output=True)
    assert run.returncode != 0 and "--tokenizer" in run.stderr.decode()
    run = subprocess.run([BIN, "tokenize", "--help"], capture_output=True)
    assert run.returncode == 0 and b"--no-special" in run.stdout
