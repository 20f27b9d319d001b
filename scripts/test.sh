#!/usr/bin/env bash
# Runs every test: installs dependencies, builds, then the unit tests (CTest), the end-to-end tests
# (pytest with the openai client), the deployment manifests, the wheel and a bounded fuzzing run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh  # everything, test tools included
bash scripts/build.sh -DEMBEDSERVE_TESTS=ON -DEMBEDSERVE_BENCH=ON  # back on after a run.sh build turned them off
echo "== unit tests (ctest)"
# Test binaries do not pass through main()'s re-exec (src/cli/thread_policy.h): give them the same
# sleeping OpenMP workers, or ctest -j running two of them on 2 cores stalls at every barrier.
(cd build && OMP_WAIT_POLICY=PASSIVE ctest --output-on-failure --timeout 900 -j "$(nproc)")
if [ -d tests/e2e ] && ls tests/e2e/test_*.py >/dev/null 2>&1; then
  echo "== end-to-end tests (pytest)"
  EMBEDSERVE_BIN="$PWD/build/embedserve" python3 -m pytest -q tests/e2e
fi
echo "== deployment manifests (pytest)"
python3 -m pytest -q tests/deploy
echo "== the wheel (pip install ., auditwheel, a fresh venv, the Python API, Ray Data)"
bash scripts/test_wheel.sh
if [ -x scripts/fuzz.sh ]; then
  echo "== fuzzing (bounded)"
  bash scripts/fuzz.sh
fi
