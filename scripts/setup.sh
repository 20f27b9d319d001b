#!/usr/bin/env bash
# Installs what embedserve needs to build and test on Debian 12: Debian packages, and PyPI for test-only tools.
# Safe to run again: it skips what is already there.
set -euo pipefail

DEB_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  nlohmann-json3-dev          # JSON (header-only)
  libboost1.74-dev            # Boost.Beast/Asio HTTP server (header-only)
  libopenblas-dev             # CPU GEMMs (linked statically)
  libopenblas-openmp-dev      # the OpenMP build of OpenBLAS we link: one thread pool with our kernels
  libcurl4-openssl-dev        # hub downloads
  libgtest-dev libgmock-dev   # unit tests
  libbenchmark-dev            # micro-benchmarks
  clang-14 libclang-rt-14-dev # libFuzzer and sanitizers
  unicode-data                # Unicode tables the tokenizer's classes are generated from
  manpages-de manpages-fr manpages-ja manpages-ru manpages-pl manpages-es  # tokenizer parity corpus text
  wrk                         # HTTP load test
  python3 python3-pip
)
PIP_PACKAGES=(tokenizers numpy pytest openai aiohttp safetensors huggingface_hub)  # huggingface_hub: cache interop test

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
if ! "$PY" -c "import tokenizers, numpy, pytest, openai, aiohttp, safetensors, huggingface_hub" 2>/dev/null; then
  echo "setup: installing Python test tools: ${PIP_PACKAGES[*]}"
  "$PY" -m pip install --quiet --disable-pip-version-check "${PIP_PACKAGES[@]}" 2>/dev/null ||
    "$PY" -m pip install --quiet --disable-pip-version-check --break-system-packages "${PIP_PACKAGES[@]}"
fi
