"""embedserve.Engine from an installed wheel: the command's vectors bit for bit, its messages, the GIL released."""
from __future__ import annotations

import json
import subprocess
import threading
import time

import numpy as np
import pytest

import embedserve
from conftest import HIDDEN

TEXTS = ["hello world", "你好，世界", "Qwen3 embeds the last token", "a", "  spaces  and\ttabs\n",
         "emoji 🚀 and accents: café, naïve, Ångström", "x " * 40, "The quick brown fox jumps over the lazy dog."]


def run_embed_command(command, model, texts, tmp_path, *flags) -> np.ndarray:
    src = tmp_path / "texts.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    out = tmp_path / "vectors.npy"
    subprocess.run([str(command), "embed", "--model-path", str(model), "--input", str(src), "--output", str(out),
                    "--device", "cpu", *flags], check=True, capture_output=True)
    return np.load(out)


def command_error(command, model, texts, tmp_path, *flags) -> str:
    """The one-line message `embedserve embed` prints for these inputs, without its "embedserve embed: " prefix."""
    src = tmp_path / "bad.jsonl"
    src.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts), encoding="utf-8")
    run = subprocess.run([str(command), "embed", "--model-path", str(model), "--input", str(src), "--output",
                          str(tmp_path / "never.npy"), "--device", "cpu", *flags], capture_output=True, text=True)
    assert run.returncode != 0, "the command should have failed"
    line = run.stderr.strip().splitlines()[-1]
    assert line.startswith("embedserve embed: "), line
    return line[len("embedserve embed: "):]


def assert_bitwise_equal(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype == np.float32 and a.shape == b.shape, (a.dtype, a.shape, b.dtype, b.shape)
    differ = np.flatnonzero((a.view(np.uint32) != b.view(np.uint32)).any(axis=1))
    assert differ.size == 0, f"rows {differ.tolist()} differ in their bits"


def test_the_command_and_the_module_are_one_version(command):
    run = subprocess.run([str(command), "--version"], check=True, capture_output=True, text=True)
    assert run.stdout.strip() == f"embedserve {embedserve.__version__}"


@pytest.mark.parametrize("flags,kwargs", [
    ((), {}),
    (("--prompt-name", "query"), {"prompt_name": "query"}),
    (("--instruction", "Find the passage", "--dimensions", "8"), {"instruction": "Find the passage", "dimensions": 8}),
    (("--max-length", "5", "--max-num-batched-tokens", "16"), {"max_length": 5, "batch_tokens": 16}),
    # Texts of up to 41 tokens over a budget of 8: the longer ones take the chunked path, as the command sends them.
    (("--max-num-batched-tokens", "8"), {"batch_tokens": 8}),
])
def test_vectors_are_bitwise_those_of_the_embed_command(engine, command, tiny_model, tmp_path, flags, kwargs):
    expected = run_embed_command(command, tiny_model, TEXTS, tmp_path, *flags)
    got = engine.encode(TEXTS, **kwargs)
    assert got.shape == (len(TEXTS), kwargs.get("dimensions", HIDDEN))
    assert_bitwise_equal(got, expected)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)


def test_token_ids_give_the_vectors_of_their_texts(engine):
    ids = engine.tokenize(TEXTS, prompt_name="query")
    assert all(seq[-1] == 151643 for seq in ids), "the EOS <|endoftext|> ends every sequence"
    assert_bitwise_equal(engine.encode(ids), engine.encode(TEXTS, prompt_name="query"))
    assert_bitwise_equal(engine.encode(np.array(ids[3])[None, :]), engine.encode(TEXTS[3:4], prompt_name="query"))


def test_one_string_gives_one_vector_and_order_is_kept(engine):
    one = engine.encode(TEXTS[1])
    assert one.shape == (HIDDEN,)
    batch = engine.encode(TEXTS)
    assert_bitwise_equal(one[None, :], batch[1:2])
    assert_bitwise_equal(engine.encode(TEXTS[::-1])[::-1], batch)
    assert engine.encode([]).shape == (0, HIDDEN)
    assert engine.get_sentence_embedding_dimension() == HIDDEN and engine.info["device"] == "cpu"


def test_show_progress_draws_the_commands_bar(engine, capfd):
    engine.encode(TEXTS, show_progress=True)
    err = capfd.readouterr().err
    assert "embedding" in err and "100%" in err, err
    engine.encode(TEXTS)
    assert capfd.readouterr().err == "", "no bar unless asked"


def test_errors_carry_the_commands_messages(engine, command, tiny_model, tmp_path):
    too_long = ["short", "word " * 200]
    cli = command_error(command, tiny_model, too_long, tmp_path)
    with pytest.raises(ValueError) as err:
        engine.encode(too_long)
    # The same sentence, where the input is named as each caller names it (file:line, texts[i]) and the
    # way out is spelled as each caller spells it (a flag, a keyword argument).
    assert str(err.value).startswith("texts[1]: ")
    assert cli.startswith(f"{tmp_path / 'bad.jsonl'}:2: ")
    assert str(err.value).split(": ", 1)[1].split(";")[0] == cli.split(":2: ", 1)[1].split(";")[0]
    assert "max_length=N" in str(err.value) and "--max-length N" in cli

    missing = tmp_path / "no-such-model"
    cli = command_error(command, missing, ["x"], tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        embedserve.Engine(missing, device="cpu")
    assert str(err.value) == cli

    with pytest.raises(ValueError, match="prompt"):
        engine.encode(["x"], prompt_name="no-such-prompt")
    with pytest.raises(ValueError, match="dimensions"):
        engine.encode(["x"], dimensions=HIDDEN + 1)
    with pytest.raises(ValueError, match="Normalize"):
        engine.encode(["x"], normalize=False)
    with pytest.raises(ValueError, match=r"token_ids\[0\].*151665"):
        engine.encode([[151668]])
    with pytest.raises(ValueError, match="--device must be auto, cpu or cuda"):
        embedserve.Engine(tiny_model, device="tpu")
    with pytest.raises(TypeError, match="mix"):
        engine.encode(["x", [1, 2]])


def test_the_gil_is_released_while_the_engine_runs(engine):
    texts = [f"sentence number {i} about nothing in particular" for i in range(20000)]
    start = time.perf_counter()
    engine.encode(texts)
    alone = time.perf_counter() - start  # the call's length with nothing beside it
    looping, finished = threading.Event(), threading.Event()
    result = {}

    def work():
        looping.wait()  # the call starts only once the loop below runs, so the loop spans it
        result["vectors"] = engine.encode(texts)
        finished.set()

    worker = threading.Thread(target=work)
    worker.start()
    longest_stall, last = 0.0, time.perf_counter()
    looping.set()
    while not finished.is_set():  # this thread runs only while the worker lets go of the GIL
        now = time.perf_counter()
        longest_stall, last = max(longest_stall, now - last), now
    worker.join()
    assert result["vectors"].shape == (20000, HIDDEN)
    # Holding the GIL through the call would stall this loop for the whole native call; released, the loop
    # waits only for the interpreter's switch interval (5 ms) and the OS scheduler.
    assert longest_stall < alone / 3, f"this thread stalled {longest_stall:.3f} s of a {alone:.3f} s call"


def test_threads_sharing_an_engine_take_turns_and_get_their_own_vectors(engine):
    expected = engine.encode(TEXTS)
    results = [None] * 4

    def work(i):
        results[i] = engine.encode(TEXTS[i:] + TEXTS[:i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, got in enumerate(results):
        assert_bitwise_equal(got, np.concatenate([expected[i:], expected[:i]]))
