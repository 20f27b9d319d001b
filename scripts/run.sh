#!/usr/bin/env bash
# The one command: installs dependencies, builds, then runs `embedserve ARGS...`.
# Example: bash scripts/run.sh serve --model-path Qwen/Qwen3-Embedding-0.6B
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh >/dev/null
exec ./build/embedserve "$@"
