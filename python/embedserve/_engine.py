"""embedserve.Engine: Qwen3-Embedding vectors in-process, with sentence-transformers' `encode` shape.

Everything between the inputs and the vectors is the C++ of `embedserve embed` (src/python/local_engine.cc):
the same tokenizer, prompts, truncation, batching and engine, so a text's vector here is bitwise the one the
command writes. This file only sorts out what kind of input it was given.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from embedserve._cuda import with_pip_cublas
from embedserve._embedserve import LocalEngine


def _as_list(inputs: Any) -> list:
    """A list from a list, tuple, NumPy array, pandas Series or pyarrow array (Ray hands over the last three)."""
    if isinstance(inputs, list):
        return inputs
    if hasattr(inputs, "to_pylist"):  # pyarrow
        return inputs.to_pylist()
    if hasattr(inputs, "tolist"):  # NumPy, pandas
        return inputs.tolist()
    if isinstance(inputs, Iterable):
        return list(inputs)
    raise TypeError(f"encode() takes a string, a list of strings or a list of token-id lists, got {type(inputs).__name__}")


def _is_token_ids(item: Any) -> bool:
    return isinstance(item, (list, tuple, np.ndarray)) and all(
        isinstance(t, (int, np.integer)) and not isinstance(t, bool) for t in item)


class Engine:
    """A Qwen3-Embedding model loaded on the CPU or a GPU.

    model_path: a model directory or a hub id (found in the Hugging Face cache, else downloaded, as the
        command does; HF_HOME, HF_HUB_CACHE, HF_TOKEN and HF_HUB_OFFLINE apply).
    device: "cpu", "cuda" or "auto" (CUDA when this build has it and a GPU is visible).
    dtype: "auto" (CPU float32, CUDA bfloat16), "float32" or "bfloat16" (CUDA only).
    max_num_batched_tokens: the token budget of one forward pass (the command's --max-num-batched-tokens);
        None: 16384 on a GPU, 2048 on the CPU (whose GEMMs need no more, and whose workspace is resident memory).
    threads: CPU threads, 0 for every core.

    One engine runs one batch at a time: calls from several threads on one object take turns (each call is
    batched internally). The GIL is released while the engine works.
    """

    def __init__(self, model_path: str | os.PathLike, device: str = "auto", dtype: str = "auto",
                 max_num_batched_tokens: int | None = None, threads: int = 0, revision: str = "main"):
        if device != "cpu":
            # The engine loads cuBLAS when it starts on a GPU; point it at pip's nvidia-cublas when that is
            # where cuBLAS is (the process environment, so the C++ reads it exactly as the command's does).
            found = with_pip_cublas(os.environ).get("EMBEDSERVE_CUBLAS_PATH")
            if found and not os.environ.get("EMBEDSERVE_CUBLAS_PATH"):
                os.environ["EMBEDSERVE_CUBLAS_PATH"] = found
        self._native = LocalEngine.open(os.fspath(model_path), device, dtype,
                                        None if max_num_batched_tokens is None else int(max_num_batched_tokens),
                                        int(threads), revision)
        self._turn = threading.Lock()  # Engine is single-caller; the GIL is released while it runs
        self._info = self._native.info()

    @property
    def info(self) -> dict:
        """The loaded model: hidden_size, device, dtype, backend, pooling, max_position_embeddings, ..."""
        return dict(self._info)

    @property
    def embedding_dimension(self) -> int:
        return self._info["hidden_size"]

    def get_sentence_embedding_dimension(self) -> int:
        """sentence-transformers' name for embedding_dimension."""
        return self.embedding_dimension

    def encode(self, sentences: str | Sequence[str] | Sequence[Sequence[int]], prompt_name: str | None = None,
               instruction: str | None = None, dimensions: int | None = None, normalize: bool = True,
               batch_tokens: int | None = None, show_progress: bool = False,
               max_length: int | None = None) -> np.ndarray:
        """Embeds texts (or token-id sequences, EOS included) into float32 [n, d] in input order.

        A lone string or a lone list of ints gives one vector, [d], as sentence-transformers does.
        prompt_name: a prompt of config_sentence_transformers.json ("query"); instruction: Qwen3-Embedding's
        "Instruct: ...\\nQuery:" prefix; at most one of the two, texts only.
        dimensions: keep the first d components and re-normalise (Matryoshka).
        normalize: the model's pipeline ends with Normalize, so False is an error rather than a silent no-op.
        batch_tokens: this call's token budget per forward pass (default: max_num_batched_tokens).
        max_length: truncate each input to this many tokens, EOS kept; without it a too-long input is an error.
        Errors: ValueError for bad inputs or options (the message names the input, e.g. "texts[3]: ..."),
        FileNotFoundError / OSError / RuntimeError otherwise, with the command's messages.
        """
        single = isinstance(sentences, str) or (isinstance(sentences, (list, tuple, np.ndarray)) and
                                               len(sentences) > 0 and _is_token_ids(sentences))
        items = [sentences] if single else _as_list(sentences)
        args = (prompt_name, instruction, dimensions, bool(normalize), batch_tokens, max_length, bool(show_progress))
        if all(isinstance(s, str) for s in items):
            with self._turn:
                vectors = self._native.encode_texts(items, *args)
        elif all(_is_token_ids(s) for s in items):
            ids = [[int(t) for t in s] for s in items]
            with self._turn:
                vectors = self._native.encode_ids(ids, *args)
        else:
            kinds = sorted({type(s).__name__ for s in items})
            raise TypeError("encode() takes strings or token-id lists, not a mix or other types; got " + ", ".join(kinds))
        return vectors[0] if single else vectors

    def tokenize(self, texts: str | Sequence[str], prompt_name: str | None = None, instruction: str | None = None,
                 max_length: int | None = None) -> list[list[int]]:
        """The token ids encode() embeds for each text: the prompt's and the EOS included."""
        items = [texts] if isinstance(texts, str) else _as_list(texts)
        return self._native.tokenize(items, prompt_name, instruction, max_length)

    def __repr__(self) -> str:
        i = self._info
        return f"embedserve.Engine({i['model_id']!r}, device={i['device']!r}, dtype={i['dtype']!r}, dim={i['hidden_size']})"
