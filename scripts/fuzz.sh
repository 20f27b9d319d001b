#!/usr/bin/env bash
# Bounded fuzzing runs (libFuzzer + ASan + UBSan, clang-14) in their own build dir: the tokenizer (60 s), the
# server's HTTP request reading (45 s) and its JSON request schemas (45 s). Exits non-zero on any crash, leak,
# sanitizer report or broken invariant. FUZZ_SECONDS overrides every target's time (e.g. FUZZ_SECONDS=600).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_C_FLAGS="$SAN" -DCMAKE_CXX_FLAGS="$SAN" \
  -DEMBEDSERVE_FUZZ=ON -DEMBEDSERVE_TESTS=OFF -DEMBEDSERVE_BENCH=OFF -DEMBEDSERVE_CUDA=OFF >/dev/null
cmake --build "$BUILD" -j2 --target tokenizer_fuzz http_request_fuzz request_json_fuzz
mkdir -p "$BUILD/fuzz-artifacts"

# run_fuzzer NAME SECONDS SEEDS [libFuzzer flags...]
run_fuzzer() {
  local name=$1 seconds=${FUZZ_SECONDS:-$2} seeds=$3
  shift 3
  # libFuzzer writes new inputs into the first corpus directory: keep the checked-in seeds read-only.
  local work="$BUILD/fuzz-corpus/$name"
  mkdir -p "$work"
  echo "fuzz: $name for ${seconds}s"
  set +e  # keep going after a failing fuzzer so the reproducer's location gets printed
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
    "$BUILD/tests/fuzz/$name" "$work" "$seeds" "$@" \
    -max_total_time="$seconds" -rss_limit_mb=4096 -timeout=20 \
    -artifact_prefix="$BUILD/fuzz-artifacts/$name-" -print_final_stats=1 >"$BUILD/$name.log" 2>&1
  local status=$?
  set -e
  tail -n 12 "$BUILD/$name.log"
  if [ "$status" -ne 0 ]; then
    echo "fuzz: $name FAILED (exit $status); reproducer in $BUILD/fuzz-artifacts/, log in $BUILD/$name.log" >&2
    exit "$status"
  fi
}

run_fuzzer tokenizer_fuzz 60 tests/fuzz/seeds -max_len=4096
run_fuzzer http_request_fuzz 45 tests/fuzz/seeds_http -max_len=8192 -dict=tests/fuzz/http.dict
run_fuzzer request_json_fuzz 45 tests/fuzz/seeds_request_json -max_len=4096 -dict=tests/fuzz/request_json.dict
echo "fuzz: no crash, leak or sanitizer report (tokenizer, HTTP requests, JSON request schemas)"
