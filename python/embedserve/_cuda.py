"""Finds cuBLAS 13 installed by pip (nvidia-cublas), for the engine's run-time loader."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_CUBLAS = "libcublas.so.13"
# CUDA 13's wheels put every library in nvidia/cu13/lib; the older per-library layout used nvidia/cublas/lib.
_WHEEL_FOLDERS = ("nvidia/cu13/lib", "nvidia/cublas/lib")


def pip_cublas_folder(search_path: list[str] | None = None) -> str | None:
    """The folder of pip's libcublas.so.13 on this interpreter's import path, or None."""
    for entry in sys.path if search_path is None else search_path:
        for folder in _WHEEL_FOLDERS:
            candidate = Path(entry or ".") / folder
            if (candidate / _CUBLAS).is_file():
                return str(candidate.resolve())
    return None


def with_pip_cublas(environ: dict[str, str] | os._Environ) -> dict[str, str]:
    """The environment with EMBEDSERVE_CUBLAS_PATH pointing at pip's cuBLAS, unless the user set it.

    The engine reads EMBEDSERVE_CUBLAS_PATH (cli/engine_flags.cc); without it the loader searches the system's
    library path and /usr/local/cuda, where a pip-only installation has nothing.
    """
    env = dict(environ)
    if not env.get("EMBEDSERVE_CUBLAS_PATH"):
        folder = pip_cublas_folder()
        if folder:
            env["EMBEDSERVE_CUBLAS_PATH"] = folder
    return env
