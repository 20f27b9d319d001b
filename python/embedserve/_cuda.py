"""Finds cuBLAS 13 and NCCL installed by pip (nvidia-cublas, nvidia-nccl), for the engine's run-time loaders."""

from __future__ import annotations

import os
import sys
from pathlib import Path

_CUBLAS = "libcublas.so.13"
# CUDA 13's wheels put every library in nvidia/cu13/lib; the older per-library layout used nvidia/cublas/lib.
_WHEEL_FOLDERS = ("nvidia/cu13/lib", "nvidia/cublas/lib")
# NCCL (for --tp above 1): its own wheel's folder, or CUDA 13's shared one.
_NCCL = "libnccl.so.2"
_NCCL_WHEEL_FOLDERS = ("nvidia/nccl/lib", "nvidia/cu13/lib")


def _pip_folder(library: str, folders: tuple[str, ...], search_path: list[str] | None) -> str | None:
    """The first of `folders` under an entry of the import path (or `search_path`) that holds `library`, or None."""
    for entry in sys.path if search_path is None else search_path:
        for folder in folders:
            candidate = Path(entry or ".") / folder
            if (candidate / library).is_file():
                return str(candidate.resolve())
    return None


def pip_cublas_folder(search_path: list[str] | None = None) -> str | None:
    """The folder of pip's libcublas.so.13 on this interpreter's import path, or None."""
    return _pip_folder(_CUBLAS, _WHEEL_FOLDERS, search_path)


def pip_nccl_folder(search_path: list[str] | None = None) -> str | None:
    """The folder of pip's libnccl.so.2 on this interpreter's import path, or None."""
    return _pip_folder(_NCCL, _NCCL_WHEEL_FOLDERS, search_path)


def with_pip_cublas(environ: dict[str, str] | os._Environ) -> dict[str, str]:
    """The environment with EMBEDSERVE_CUBLAS_PATH and EMBEDSERVE_NCCL_PATH pointing at pip's cuBLAS and NCCL,
    unless the user set them.

    The engine reads both (cli/engine_flags.cc); without them the loaders search the system's library path and
    /usr/local/cuda (and, for NCCL, the system Python's package folders), which a virtual environment is not.
    """
    env = dict(environ)
    if not env.get("EMBEDSERVE_CUBLAS_PATH"):
        folder = pip_cublas_folder()
        if folder:
            env["EMBEDSERVE_CUBLAS_PATH"] = folder
    if not env.get("EMBEDSERVE_NCCL_PATH"):
        folder = pip_nccl_folder()
        if folder:
            env["EMBEDSERVE_NCCL_PATH"] = folder
    return env
