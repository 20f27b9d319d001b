"""The `embedserve` command pip installs: runs the binary shipped inside the package, with pip's cuBLAS found."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from embedserve._cuda import with_pip_cublas


def binary_path() -> Path:
    """The `embedserve` executable of this installation (the same build as the Python module)."""
    return Path(__file__).absolute().parent / "bin" / "embedserve"


def main() -> None:
    binary = binary_path()
    if not binary.is_file():
        sys.exit(f"embedserve: {binary} is missing; reinstall the package (pip install --force-reinstall embedserve)")
    # exec, not a child process: signals (the server's SIGTERM drain), the exit status and the terminal are the
    # binary's own, exactly as when it is run directly.
    os.execve(binary, [str(binary), *sys.argv[1:]], with_pip_cublas(os.environ))


if __name__ == "__main__":
    main()
