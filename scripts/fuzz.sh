#!/usr/bin/env bash
# Bounded fuzzing run of the tokenizer (libFuzzer + ASan + UBSan, clang-14) in its own build dir.
# Exits non-zero on any crash, leak, sanitizer report or broken invariant. FUZZ_SECONDS overrides the 60 s.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${FUZZ_SECONDS:-60}
BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
SAN="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_C_FLAGS="$SAN" -DCMAKE_CXX_FLAGS="$SAN" \
  -DEMBEDSERVE_FUZZ=ON -DEMBEDSERVE_TESTS=OFF -DEMBEDSERVE_BENCH=OFF -DEMBEDSERVE_CUDA=OFF >/dev/null
cmake --build "$BUILD" -j2 --target tokenizer_fuzz
# libFuzzer writes new inputs into the first corpus directory: keep the checked-in seeds read-only.
WORK="$BUILD/fuzz-corpus"
mkdir -p "$WORK" "$BUILD/fuzz-artifacts"
echo "fuzz: tokenizer_fuzz for ${SECONDS_TO_RUN}s"
set +e  # keep going after a failing fuzzer so the reproducer's location gets printed
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
  "$BUILD/tests/fuzz/tokenizer_fuzz" "$WORK" tests/fuzz/seeds \
  -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -rss_limit_mb=4096 -timeout=20 \
  -artifact_prefix="$BUILD/fuzz-artifacts/" -print_final_stats=1 >"$BUILD/fuzz.log" 2>&1
status=$?
set -e
tail -n 40 "$BUILD/fuzz.log"
if [ "$status" -ne 0 ]; then
  echo "fuzz: FAILED (exit $status); reproducer in $BUILD/fuzz-artifacts/" >&2
  exit "$status"
fi
echo "fuzz: no crash, leak or sanitizer report in ${SECONDS_TO_RUN}s"
