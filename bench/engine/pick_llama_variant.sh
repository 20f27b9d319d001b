#!/usr/bin/env bash
# Prints the best llama-embedding variant of build_llama_cpp_static.sh this CPU runs (avx512bf16, avx512 or avx2),
# from /proc/cpuinfo's flags (or the file given); exits 1, printing nothing, on a CPU without AVX2/FMA/F16C.
#   bash bench/engine/pick_llama_variant.sh [CPUINFO]
set -euo pipefail
flags=" $(grep -m1 '^flags' "${1:-/proc/cpuinfo}" | cut -d: -f2) "
has() { for f in "$@"; do [[ "$flags" == *" $f "* ]] || return 1; done; }
if has avx512f avx512cd avx512bw avx512dq avx512vl avx512vbmi avx512_vnni avx512_bf16 avx2 fma f16c bmi2; then
  echo avx512bf16
elif has avx512f avx512cd avx512bw avx512dq avx512vl avx2 fma f16c bmi2; then
  echo avx512
elif has avx2 fma f16c bmi2; then
  echo avx2
else
  exit 1
fi
