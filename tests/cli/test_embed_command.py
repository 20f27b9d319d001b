"""`embedserve embed` end to end on random-weight models: output formats, order, Matryoshka dimensions,
prompts, truncation, batching, and every error a user can cause (one-line message, non-zero exit, no file).

Expected vectors come from transformers (tests/data/reference/) or, for inputs the fixtures do not hold,
from the float64 numpy reference (tools/numpy_qwen3_reference.py), itself checked against transformers.
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))
import make_random_model  # noqa: E402
import numpy_qwen3_reference  # noqa: E402

BIN = os.environ.get("EMBEDSERVE_BIN", os.path.join(REPO, "build", "embedserve"))
WORK = os.environ.get("EMBEDSERVE_TEST_WORK_DIR")
TEXTS = os.path.join(REPO, "tests", "data", "reference_texts.jsonl")
QUERY_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"


@pytest.fixture(scope="session")
def work(tmp_path_factory):
    d = WORK or str(tmp_path_factory.mktemp("embed"))
    os.makedirs(d, exist_ok=True)
    return d


def build(work, name, *args):
    out = os.path.join(work, name)
    make_random_model.main(["--out", out, *args])
    return out


@pytest.fixture(scope="session")
def model(work):
    return build(work, "tiny-bf16", "--preset", "tiny-bf16")


@pytest.fixture(scope="session")
def reference():
    with open(os.path.join(REPO, "tests", "data", "reference", "tiny-bf16.json"), encoding="utf-8") as f:
        return np.array([v["embedding"] for v in json.load(f)["vectors"]], dtype=np.float64)


def texts():
    with open(TEXTS, encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f.read().split("\n") if line.strip()]


def embed(model, inp, out, *flags, stdin=None, dtype="f32"):
    """f32 (the parity mode) unless asked: these tests hold the command's vectors to 1e-5 of transformers."""
    return subprocess.run([BIN, "embed", "--model-path", model, "--input", inp, "--output", out, "--device", "cpu",
                           "--threads", "2", "--dtype", dtype, *flags], input=stdin, capture_output=True, timeout=120)


def ok(r):
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    return r


def failure(r, *needles):
    """An error: non-zero exit, one line on stderr naming the problem."""
    err = r.stderr.decode(errors="replace")
    assert r.returncode != 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected a one-line message, got: {err!r}"
    for n in needles:
        assert n in lines[0], f"{n!r} not in {lines[0]!r}"
    return lines[0]


def write(path, content, mode="w"):
    with open(path, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
        f.write(content)
    return path


def cosines(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    assert [r["index"] for r in rows] == list(range(len(rows)))
    return np.array([r["embedding"] for r in rows], dtype=np.float32)


def test_npy_and_jsonl_match_transformers_in_input_order(model, reference, tmp_path):
    npy, jsonl = str(tmp_path / "o.npy"), str(tmp_path / "o.jsonl")
    r = ok(embed(model, TEXTS, npy))
    # Not a terminal: no progress bar, just the summary line.
    assert r.stderr.decode().startswith("embedserve embed: 49 texts, 10796 tokens") and r.stderr.count(b"\n") == 1
    assert r.stdout == b""
    ok(embed(model, TEXTS, jsonl))
    m = np.load(npy)
    assert m.dtype == np.float32 and m.shape == (len(texts()), 32)
    assert np.array_equal(read_jsonl(jsonl), m), "shortest round-trip floats must read back bit-exactly"
    c = cosines(m, reference)
    assert c.min() >= 0.99999, f"text {int(c.argmin())}: cosine {c.min()}"
    assert np.allclose(np.linalg.norm(m, axis=1), 1.0, atol=1e-5)
    assert not os.path.exists(npy + ".partial")


def test_small_token_budget_gives_the_same_vectors(model, tmp_path):
    ok(embed(model, TEXTS, str(tmp_path / "big.npy"), "--max-num-batched-tokens", "100000"))
    # 64 tokens per batch: most texts alone, the 2,000+ token ones over budget in batches of their own.
    ok(embed(model, TEXTS, str(tmp_path / "small.npy"), "--max-num-batched-tokens", "64"))
    big, small = np.load(tmp_path / "big.npy"), np.load(tmp_path / "small.npy")
    assert np.abs(big - small).max() <= 1e-5
    # --batch-tokens, the flag's old name, still works and means the same budget.
    ok(embed(model, TEXTS, str(tmp_path / "alias.npy"), "--batch-tokens", "64"))
    assert np.array_equal(np.load(tmp_path / "alias.npy"), small)


def test_the_default_cpu_mode_keeps_bf16_weights_within_the_bf16_bound(model, reference, tmp_path):
    """The CPU's default: bf16 weights, f32 activations (GEMM inputs rounded to bf16 where the CPU multiplies in
    bf16): within 1e-4 of transformers' float32 vectors (tests/model/reference_qwen3.h says why), and a mode of
    its own (not the f32 path under another name)."""
    default, f32 = str(tmp_path / "d.npy"), str(tmp_path / "f.npy")
    ok(embed(model, TEXTS, default, dtype="auto"))
    ok(embed(model, TEXTS, f32))
    d = np.load(default)
    assert cosines(d, reference).min() >= 0.9999
    assert not np.array_equal(d, np.load(f32))


def test_output_is_in_input_order_across_windows(model, tmp_path):
    # More texts than one scheduler window (4,096), of mixed lengths, so windows are sorted, packed and written
    # back while the next one is queued: row i must still be text i, whatever order the file gives.
    lines = [f"text {i} " + "word " * (i * 7 % 23) for i in range(4400)]
    ok(embed(model, write(tmp_path / "fwd.txt", "\n".join(lines) + "\n"), str(tmp_path / "fwd.npy"),
             "--max-num-batched-tokens", "256"))
    ok(embed(model, write(tmp_path / "rev.txt", "\n".join(reversed(lines)) + "\n"), str(tmp_path / "rev.npy"),
             "--max-num-batched-tokens", "4096"))
    fwd, rev = np.load(tmp_path / "fwd.npy"), np.load(tmp_path / "rev.npy")
    assert fwd.shape == (4400, 32)
    assert np.abs(fwd - rev[::-1]).max() <= 1e-5
    assert np.abs(fwd[0] - fwd[1]).max() > 1e-3, "different texts, different vectors"


def test_plain_text_every_line_is_a_text_and_stdin_works(model, reference, tmp_path):
    all_texts = texts()
    # Line 1: text 3; line 2: empty (text 0, EOS only); line 3: text 2, with CRLF ending.
    content = f"{all_texts[3]}\n\n{all_texts[2]}\r\n"
    ok(embed(model, write(tmp_path / "in.txt", content), str(tmp_path / "o.npy")))
    m = np.load(tmp_path / "o.npy")
    assert m.shape == (3, 32)
    assert cosines(m, reference[[3, 0, 2]]).min() >= 0.99999
    ok(embed(model, "-", str(tmp_path / "s.npy"), stdin=content.encode()))
    assert np.array_equal(np.load(tmp_path / "s.npy"), m)


def test_dimensions_truncates_and_renormalises(model, tmp_path):
    ok(embed(model, TEXTS, str(tmp_path / "full.npy")))
    ok(embed(model, TEXTS, str(tmp_path / "d8.npy"), "--dimensions", "8"))
    full, d8 = np.load(tmp_path / "full.npy"), np.load(tmp_path / "d8.npy")
    assert d8.shape == (full.shape[0], 8)
    want = full[:, :8] / np.linalg.norm(full[:, :8], axis=1, keepdims=True)
    assert np.abs(d8 - want).max() <= 1e-6
    ok(embed(model, TEXTS, str(tmp_path / "d1.npy"), "--dimensions", "1"))
    assert np.allclose(np.abs(np.load(tmp_path / "d1.npy")), 1.0)
    for bad in ("0", "33", "-4", "eight"):
        failure(embed(model, TEXTS, str(tmp_path / "bad.npy"), "--dimensions", bad), "--dimensions")
        assert not os.path.exists(tmp_path / "bad.npy")


def test_instruction_and_prompt_name_use_qwen3_query_format(model, reference, tmp_path):
    # reference_texts.jsonl line 6 is exactly "Instruct: <query instruction>\nQuery:What is the capital of China?"
    inp = write(tmp_path / "q.jsonl", json.dumps({"text": "What is the capital of China?"}) + "\n")
    ok(embed(model, inp, str(tmp_path / "i.npy"), "--instruction", QUERY_INSTRUCTION))
    ok(embed(model, inp, str(tmp_path / "p.npy"), "--prompt-name", "query"))
    ok(embed(model, inp, str(tmp_path / "none.npy")))
    i, p, none = (np.load(tmp_path / f) for f in ("i.npy", "p.npy", "none.npy"))
    assert cosines(i, reference[[5]])[0] >= 0.99999
    assert np.array_equal(i, p)
    assert cosines(none, reference[[5]])[0] < 0.999, "without a prompt the query must embed differently"
    failure(embed(model, inp, str(tmp_path / "x.npy"), "--prompt-name", "nope"), "nope", "query")
    failure(embed(model, inp, str(tmp_path / "x.npy"), "--prompt-name", "query", "--instruction", "x"),
            "--prompt-name", "--instruction")


def test_max_length_truncates_keeping_eos_and_overlong_is_an_error_naming_the_line(work, tmp_path):
    from tokenizers import Tokenizer
    small = build(work, "tiny-maxpos64", "--seed", "11", "--max-position", "64")
    long_text = texts()[47]
    inp = write(tmp_path / "in.jsonl", json.dumps({"text": "short"}) + "\n" + json.dumps({"text": long_text}) + "\n")
    msg = failure(embed(small, inp, str(tmp_path / "o.npy")), ":2:", "64", "--max-length")
    assert not os.path.exists(tmp_path / "o.npy"), msg
    ok(embed(small, inp, str(tmp_path / "o.npy"), "--max-length", "40"))
    got = np.load(tmp_path / "o.npy")
    tok = Tokenizer.from_file(os.path.join(small, "tokenizer.json"))
    ids = tok.encode(long_text).ids
    truncated = ids[:39] + [151643]  # HF truncation: content cut, the appended EOS kept
    ref = numpy_qwen3_reference.load_model(small)
    want = np.stack([ref.embed(tok.encode("short").ids), ref.embed(truncated)])
    assert cosines(got, want).min() >= 0.99999
    failure(embed(small, inp, str(tmp_path / "x.npy"), "--max-length", "65"), "--max-length")


def test_ids_past_the_vocabulary_are_an_error_naming_the_line(work, tmp_path):
    m = build(work, "tiny-vocab151665-mean", "--preset", "tiny-vocab151665-mean")
    inp = write(tmp_path / "in.jsonl", "\n".join(json.dumps({"text": t}) for t in
                                                 ["fine", "also fine", "so <think>hmm</think>"]) + "\n")
    failure(embed(m, inp, str(tmp_path / "o.npy")), "in.jsonl:3:", "151667", "151665")
    assert not os.path.exists(tmp_path / "o.npy")


@pytest.mark.parametrize("content,needles", [
    ('{"text": "ok"}\n{"text": "broken\n', ["in.jsonl:2:", "JSON"]),
    ('{"text": "ok"}\n{"texts": "x"}\n', ["in.jsonl:2:", '"text"']),
    (b'{"text": "ok"}\n{"text": "bad \xff byte"}\n', ["in.jsonl:2:", "UTF-8"]),
])
def test_bad_input_lines_are_one_line_errors(model, tmp_path, content, needles):
    inp = write(tmp_path / "in.jsonl", content, "wb" if isinstance(content, bytes) else "w")
    failure(embed(model, inp, str(tmp_path / "o.npy")), *needles)
    assert not os.path.exists(tmp_path / "o.npy")


def test_usage_errors(model, tmp_path):
    inp = write(tmp_path / "in.jsonl", '{"text": "x"}\n')
    failure(embed(model, str(tmp_path / "missing.jsonl"), str(tmp_path / "o.npy")), "missing.jsonl")
    failure(embed(model, inp, str(tmp_path / "o.csv")), ".csv")
    failure(embed(str(tmp_path / "no-model"), inp, str(tmp_path / "o.npy")), "no-model")
    failure(embed(model, inp, str(tmp_path / "nodir" / "o.npy")), "nodir")
    failure(embed(model, inp, str(tmp_path / "o.npy"), "--device", "tpu"), "--device")
    failure(embed(model, inp, str(tmp_path / "o.npy"), "--max-num-batched-tokens", "0"), "--max-num-batched-tokens")
    failure(embed(model, inp, str(tmp_path / "o.npy"), "--batch-tokens", "0"), "--batch-tokens")
    r = subprocess.run([BIN, "embed", "--input", inp], capture_output=True)
    failure(r, "--model-path")
    help_run = subprocess.run([BIN, "embed", "--help"], capture_output=True)
    assert help_run.returncode == 0
    assert b"--max-num-batched-tokens N" in help_run.stdout and b"(also --batch-tokens)" in help_run.stdout


def test_empty_input_gives_an_empty_matrix(model, tmp_path):
    ok(embed(model, write(tmp_path / "in.jsonl", "\n\n"), str(tmp_path / "o.npy")))
    assert np.load(tmp_path / "o.npy").shape == (0, 32)


def test_hub_id_resolves_through_the_hugging_face_cache(model, tmp_path):
    # huggingface_hub's layout: models--org--name/refs/main -> snapshots/<commit>/
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--tiny-org--tiny-bf16"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    snap.mkdir(parents=True)
    for root, _, files in os.walk(model):
        for f in files:
            src = os.path.join(root, f)
            dst = snap / os.path.relpath(src, model)
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.symlink(src, dst)
    env = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "hub"), HF_HUB_OFFLINE="1")
    run = lambda model_id, out: subprocess.run(  # noqa: E731
        [BIN, "embed", "--model-path", model_id, "--input", TEXTS, "--output", str(tmp_path / out), "--device", "cpu",
         "--threads", "2", "--dtype", "f32"],
        capture_output=True, env=env, timeout=120)
    ok(run("tiny-org/tiny-bf16", "hub.npy"))
    ok(embed(model, TEXTS, str(tmp_path / "dir.npy")))
    assert np.array_equal(np.load(tmp_path / "hub.npy"), np.load(tmp_path / "dir.npy"))
    failure(run("tiny-org/missing", "x.npy"), "tiny-org/missing", "HF_HUB_OFFLINE")


def test_dump_intermediates_writes_every_named_tensor_of_each_text(model, tmp_path):
    """--dump-intermediates: one folder per text, every intermediate of every layer with the shape
    tools/compare_intermediates.py expects (its --check-only needs no torch), and the last layer's vectors from
    the dump's own final norm agree with the vectors embed writes."""
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"text": "Hello world"}\n{"text": "a somewhat longer second text, to differ in length"}\n')
    dump = tmp_path / "dump"
    r = embed(model, str(inp), str(tmp_path / "v.npy"), "--dump-intermediates", str(dump))
    assert r.returncode == 0, r.stderr.decode()
    manifest = json.loads((dump / "manifest.json").read_text())
    assert len(manifest["token_ids"]) == 2 and manifest["pooling"] == "lasttoken" and manifest["dtype"] == "f32"
    check = subprocess.run([sys.executable, os.path.join(REPO, "tools", "compare_intermediates.py"), "--dump", str(dump),
                            "--model", model, "--check-only"], capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    vectors = np.load(tmp_path / "v.npy")
    for i in range(2):
        final = np.load(dump / f"text-{i:05d}" / "out-result_norm.npy")
        assert final.shape == (1, vectors.shape[1])  # last-token pooling: only the pooled row reaches the end
        unit = final[0] / np.linalg.norm(final[0])
        assert np.abs(unit - vectors[i]).max() < 1e-6
        first = np.load(dump / f"text-{i:05d}" / "in-inp_embd.npy")
        assert first.shape[0] == len(manifest["token_ids"][i])


def test_output_dash_writes_json_lines_to_stdout_and_the_summary_to_stderr(model, tmp_path):
    jsonl = str(tmp_path / "o.jsonl")
    ok(embed(model, TEXTS, jsonl))
    r = ok(embed(model, TEXTS, "-"))
    assert r.stdout == open(jsonl, "rb").read(), "stdout must hold exactly the .jsonl the file run wrote"
    err = r.stderr.decode()
    assert err.startswith("embedserve embed: 49 texts") and err.count("\n") == 1 and "standard output" in err
    assert not os.path.exists("-") and not os.path.exists("-.partial")


def interrupt_once_writing(args, partial, sig):
    """Runs `embed` with `args`, sends `sig` as soon as `partial` appears, and checks the signal ended the run."""
    proc = subprocess.Popen([BIN, "embed", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not partial.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)  # the signal lands within a millisecond of the file's creation, as Ctrl-C can
        assert partial.exists() and proc.poll() is None, "the run should be writing its .partial file"
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == -sig, "the exit status should say the signal ended the run"
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_run_leaves_no_partial_file(model, tmp_path, sig):
    # Enough work that the run is still embedding when the signal arrives.
    inp = write(tmp_path / "many.jsonl", "".join(json.dumps({"text": f"text {i} " * 40}) + "\n" for i in range(20000)))
    out = tmp_path / "o.npy"
    interrupt_once_writing(["--model-path", model, "--input", inp, "--output", str(out), "--device", "cpu",
                            "--threads", "1", "--max-num-batched-tokens", "64"], tmp_path / "o.npy.partial", sig)
    assert not list(tmp_path.glob("*.partial")) and not out.exists()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_batch_input_run_leaves_no_partial_file(model, tmp_path, sig):
    # OpenAI's batch input format: the output and error files are .partial until the end, both removed on a signal.
    lines = "".join(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/embeddings",
                                "body": {"input": f"text {i} " * 40}}) + "\n" for i in range(20000))
    inp = write(tmp_path / "requests.jsonl", lines + "not json\n")
    out = tmp_path / "o.jsonl"
    interrupt_once_writing(["--model-path", model, "--input", inp, "--output", str(out), "--device", "cpu",
                            "--threads", "1", "--max-num-batched-tokens", "64"], tmp_path / "o.jsonl.partial", sig)
    assert not list(tmp_path.glob("*.partial")) and not out.exists()


def bar_frames(model, inp, out, *flags):
    """Runs `embed` on a terminal (a pty) and returns the progress bar's frames as drawn."""
    import pty
    master, slave = pty.openpty()
    proc = subprocess.Popen([BIN, "embed", "--model-path", model, "--input", inp, "--output", out, "--device", "cpu",
                             "--threads", "2", *flags], stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    drawn = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the pty
            break
        if not chunk:
            break
        drawn += chunk
    os.close(master)
    assert proc.wait(timeout=120) == 0, drawn
    return [f for f in drawn.decode(errors="replace").replace("\x1b[K", "").split("\r") if f.startswith("embedding")]


def test_progress_bar_is_drawn_at_once_and_its_clock_runs_during_a_long_batch(work, tmp_path):
    # On a terminal, the bar once appeared only when the first batch ended (66 s at the default budget on a CPU). It
    # must be there at 0% before any batch ends, and be redrawn while one runs, its clock moving. The budget keeps
    # the ~5,600-token text whole: one engine call of about a second (the bar redraws every 0.25 s).
    slow = build(work, "slow-6-layers", "--hidden", "256", "--layers", "6", "--heads", "4", "--kv-heads", "2",
                 "--head-dim", "64", "--intermediate", "1024", "--dtype", "bf16")
    inp = write(tmp_path / "one.jsonl", json.dumps({"text": " ".join(f"w{j}" for j in range(1500))}) + "\n")
    frames = bar_frames(slow, inp, str(tmp_path / "o.npy"), "--max-num-batched-tokens", "16384")
    assert frames and " 0% " in frames[0], frames  # before the one batch ended
    waiting = [f for f in frames if " 0% " in f]
    assert len(waiting) >= 2, f"the bar should be redrawn while the batch runs: {frames}"
    assert "100%" in frames[-1] and "1/1 texts" in frames[-1], frames


def test_a_text_in_chunks_counts_once(work, tmp_path):
    # At the CPU's default budget (2,048) a 1,891-token text goes in two chunks; the bar once counted each as a
    # text ("2/1 texts").
    model = build(work, "small-2-layers", "--hidden", "64", "--layers", "2", "--heads", "2", "--kv-heads", "1",
                  "--head-dim", "32", "--intermediate", "128", "--dtype", "bf16")
    inp = write(tmp_path / "one.jsonl", json.dumps({"text": " ".join(f"w{j}" for j in range(500))}) + "\n")
    frames = bar_frames(model, inp, str(tmp_path / "o.npy"))
    assert all(int(re.search(r"(\d+)/1 texts", f).group(1)) <= 1 for f in frames), frames
    assert "100%" in frames[-1] and "1/1 texts" in frames[-1], frames
