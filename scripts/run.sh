#!/usr/bin/env bash
# The one command: installs what the binary needs, builds it, then runs `embedserve ARGS...`.
# Example: bash scripts/run.sh serve --model-path Qwen/Qwen3-Embedding-0.6B
# Only the embedserve target is built (no tests, benchmarks or their packages: scripts/test.sh does those), and
# setup and build talk on stderr only, so `run.sh tokenize ... > out.jsonl` gets the command's output alone.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --build

# Ninja's "[N/M] Building ..." lines become one progress line; the full log stays in build/run-build.log.
progress() {
  local line shown=false
  while IFS= read -r line; do
    [[ $line =~ ^\[([0-9]+)/([0-9]+)\] ]] || continue
    if [ -t 2 ]; then
      printf '\rbuild: compiling embedserve (%s/%s)...' "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" >&2
      shown=true
    elif ! $shown; then
      echo "build: compiling embedserve (${BASH_REMATCH[2]} steps)..." >&2
      shown=true
    fi
  done
  if $shown && [ -t 2 ]; then echo >&2; fi
}
mkdir -p build
if ! bash scripts/build.sh -DEMBEDSERVE_TESTS=OFF -DEMBEDSERVE_BENCH=OFF -- --target embedserve 2>&1 |
    tee build/run-build.log | progress; then  # pipefail: the build's status, not progress's
  echo "build: failed; the end of build/run-build.log:" >&2
  tail -n 40 build/run-build.log >&2
  exit 1
fi
exec ./build/embedserve "$@"
