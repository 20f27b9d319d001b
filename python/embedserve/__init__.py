"""embedserve: Qwen3-Embedding text vectors from Python, the same engine as the `embedserve` command.

    import embedserve
    engine = embedserve.Engine("Qwen/Qwen3-Embedding-0.6B")
    vectors = engine.encode(["hello world"], dimensions=256)   # numpy float32 [1, 256]

`embedserve.ray.Embedder` runs it inside Ray Data's map_batches (import it from embedserve.ray).
"""

import os as _os

# The engine's OpenMP workers must sleep when idle, or they spin on cores other threads need (the command sets
# the same policy by re-executing itself, cli/thread_policy.h; a module cannot, and libgomp reads it when the
# extension loads, just below). A value the user set wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from embedserve._embedserve import __version__  # noqa: E402
from embedserve._engine import Engine  # noqa: E402

__all__ = ["Engine", "__version__"]
