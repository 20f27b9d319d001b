#!/usr/bin/env bash
# Configures and builds embedserve into build/ (Release; CUDA where nvcc is found). Extra args go to CMake.
set -euo pipefail
cd "$(dirname "$0")/.."
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if [ ! -f build/CMakeCache.txt ]; then
  cmake -S . -B build -G Ninja "${launcher[@]}" "$@" >/dev/null
fi
cmake --build build --parallel "$(nproc)"
