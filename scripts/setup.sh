#!/usr/bin/env bash
# Installs embedserve's Debian 12 dependencies: `setup.sh --build` only what the binary needs to build
# (scripts/run.sh); with no argument also what the tests need (scripts/test.sh). Safe to run again.
set -euo pipefail

BUILD_PACKAGES=(
  build-essential cmake ninja-build pkg-config
  nlohmann-json3-dev          # JSON (header-only)
  libboost1.74-dev            # Boost.Beast/Asio HTTP server (header-only)
  libopenblas-dev             # CPU GEMMs (linked statically)
  libopenblas-openmp-dev      # the OpenMP build of OpenBLAS we link: one thread pool with our kernels
  libcurl4-openssl-dev        # hub downloads
  libsqlite3-dev              # the batch jobs' metadata and progress (libsqlite3.a, linked statically)
  unicode-data                # Unicode tables the tokenizer's classes are generated from
  python3                     # runs the build's generator of those tables
)
TEST_PACKAGES=(
  libgtest-dev libgmock-dev   # unit tests
  libbenchmark-dev            # micro-benchmarks
  clang-14 libclang-rt-14-dev # libFuzzer and sanitizers
  manpages-de manpages-fr manpages-ja manpages-ru manpages-pl manpages-es  # tokenizer parity corpus text
  wrk                         # HTTP load test
  python3-pip
  python3-venv python3-dev    # the wheel test: pip install . builds the Python module into a fresh venv
)
# huggingface_hub: cache interop test; kubernetes-validate (with pyyaml): deploy/kubernetes against the schemas
PIP_PACKAGES=(tokenizers numpy pytest openai aiohttp safetensors huggingface_hub kubernetes-validate pyyaml)

case "${1:-}" in
  --build) packages=("${BUILD_PACKAGES[@]}"); with_tests=false ;;
  "") packages=("${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"); with_tests=true ;;
  *) echo "usage: setup.sh [--build]   (--build: only what embedserve needs to build, not its tests)" >&2; exit 2 ;;
esac

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# apt-get with its stdout silenced. When another apt/dpkg (unattended-upgrades, a second setup) holds the lock,
# say so and wait up to 10 minutes for it instead of failing at once.
apt_get() {
  local err
  if err=$($SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=0 "$@" 2>&1 >/dev/null); then
    return 0
  fi
  if ! grep -q "Could not get lock\|Unable to acquire\|Unable to lock" <<<"$err"; then
    echo "$err" >&2
    return 1
  fi
  echo "setup: another apt/dpkg process holds the package lock; waiting for it (up to 10 min)..." >&2
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 "$@" >/dev/null
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}" >&2
  apt_get update -qq
  apt_get install -y -qq --no-install-recommends "${missing[@]}"
fi

if $with_tests; then
  PY=${PYTHON:-python3}
  if ! "$PY" -c "import tokenizers, numpy, pytest, openai, aiohttp, safetensors, huggingface_hub, kubernetes_validate, yaml" 2>/dev/null; then
    echo "setup: installing Python test tools: ${PIP_PACKAGES[*]}" >&2
    "$PY" -m pip install --quiet --disable-pip-version-check "${PIP_PACKAGES[@]}" 2>/dev/null ||
      "$PY" -m pip install --quiet --disable-pip-version-check --break-system-packages "${PIP_PACKAGES[@]}"
  fi
fi
