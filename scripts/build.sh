#!/usr/bin/env bash
# Configures and builds embedserve into build/ (Release; CUDA where nvcc is found).
# Arguments before `--` go to CMake's configure step (which then reruns), those after it to `cmake --build`,
# e.g. `build.sh -DEMBEDSERVE_TESTS=OFF -- --target embedserve`.
set -euo pipefail
cd "$(dirname "$0")/.."
configure=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do configure+=("$1"); shift; done
[ $# -gt 0 ] && shift  # the `--`
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
if [ ! -f build/CMakeCache.txt ] || [ ${#configure[@]} -gt 0 ]; then
  cmake -S . -B build -G Ninja "${launcher[@]}" "${configure[@]}" >/dev/null
fi
cmake --build build --parallel "$(nproc)" "$@"
