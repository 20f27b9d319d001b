"""embedserve.ray: embedding a Ray Dataset, one embedserve.Engine per actor.

    import ray, embedserve.ray
    ds = ray.data.read_parquet("s3://bucket/corpus/")
    ds = ds.map_batches(embedserve.ray.Embedder, fn_constructor_args=("Qwen/Qwen3-Embedding-0.6B",),
                        compute=ray.data.ActorPoolStrategy(size=8), num_gpus=1, batch_size=1024)
    ds.write_parquet("s3://bucket/vectors/")

Ray Data restarts an actor that dies and re-runs its unfinished batches (its defaults for actor pools), so a lost
worker costs time, not rows; a text's vector does not depend on its batch, so a re-run batch gives the same bits.
Ray itself is not a dependency of embedserve: install it (pip install "ray[data]") where you use this module.
"""

from __future__ import annotations

import os
from typing import Any

from embedserve._engine import Engine


class Embedder:
    """A callable class for Dataset.map_batches: adds `output_column` (float32 [rows, d]) to every batch.

    model_path, device, dtype, max_num_batched_tokens, threads, revision: as embedserve.Engine, loaded once per
    actor. text_column: the column holding the texts (or token-id lists). encode_options: passed to
    Engine.encode (prompt_name, instruction, dimensions, max_length, batch_tokens).
    Batches may be dicts of NumPy arrays (batch_format="numpy", the default), pandas DataFrames or pyarrow
    Tables; the batch comes back in the same format with its other columns untouched.
    """

    def __init__(self, model_path: str | os.PathLike, *, text_column: str = "text", output_column: str = "embedding",
                 device: str = "auto", dtype: str = "auto", max_num_batched_tokens: int | None = None, threads: int = 0,
                 revision: str = "main", **encode_options: Any):
        if "show_progress" in encode_options:
            raise TypeError("Embedder takes no show_progress: Ray Data reports progress itself")
        self.engine = Engine(model_path, device=device, dtype=dtype, max_num_batched_tokens=max_num_batched_tokens,
                             threads=threads, revision=revision)
        self.text_column = text_column
        self.output_column = output_column
        self.encode_options = encode_options

    def __call__(self, batch: Any) -> Any:
        texts = batch[self.text_column]
        if hasattr(texts, "to_pylist"):  # a pyarrow column
            texts = texts.to_pylist()
        vectors = self.engine.encode(texts, **self.encode_options)  # float32 [rows, d]
        if isinstance(batch, dict):
            out = dict(batch)
            out[self.output_column] = vectors
            return out
        if hasattr(batch, "append_column"):  # pyarrow.Table: a fixed-size list column, readable everywhere
            import pyarrow as pa

            flat = pa.array(vectors.reshape(-1), type=pa.float32())
            column = pa.FixedSizeListArray.from_arrays(flat, vectors.shape[1])
            return batch.append_column(self.output_column, column)
        out = batch.copy()  # pandas
        out[self.output_column] = list(vectors)
        return out


def embed_dataset(dataset: Any, model_path: str | os.PathLike, *, concurrency: int = 1, num_gpus: float = 0,
                  batch_size: int = 1024, **embedder_options: Any) -> Any:
    """dataset.map_batches(Embedder, ...) with the settings that suit it: a pool of `concurrency` actors, each with
    `num_gpus` GPUs (1 on GPU clusters; 0 on CPU ones, where each actor takes the CPUs its engine's `threads`
    say, all cores by default) and batches of `batch_size` rows."""
    threads = int(embedder_options.get("threads", 0))
    remote: dict[str, Any] = {"num_gpus": num_gpus} if num_gpus else {"num_cpus": threads or 1}
    from ray.data import ActorPoolStrategy  # Ray is the caller's: only this function needs it

    return dataset.map_batches(Embedder, fn_constructor_args=(model_path,), fn_constructor_kwargs=embedder_options,
                               compute=ActorPoolStrategy(size=concurrency), batch_size=batch_size, **remote)


__all__ = ["Embedder", "embed_dataset"]
