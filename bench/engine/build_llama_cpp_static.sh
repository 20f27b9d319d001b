#!/usr/bin/env bash
# Builds llama.cpp's llama-embedding as static executables, one per x86 instruction-set level, into one archive
# that a machine without a compiler or a package registry (the GPU machine) unpacks and picks from by its
# /proc/cpuinfo flags (bench/engine/pick_llama_variant.sh): the comparison in compare_llama_cpp.py then runs there
# with --llama-embedding. Sources: the llama-cpp-python sdist compare_llama_cpp.py caches (vendor/llama.cpp).
#   bash bench/engine/build_llama_cpp_static.sh [OUT_DIR]      # default .carry/llama (git-ignored)
# writes OUT_DIR/llama-cpu.tar.xz: bin/llama-embedding-VARIANT, gguf-py/, VERSION.
# Variants (GGML_NATIVE=OFF, so each runs on any CPU with its flags, not only on the one that built it):
#   avx2        AVX2 + FMA + F16C + BMI2 (Haswell and later, Zen 1-3)
#   avx512      AVX-512 F/CD/BW/DQ/VL (Skylake-X, Cascade Lake)
#   avx512bf16  avx512 + VBMI + VNNI + BF16 (Cooper Lake, Ice Lake+ with BF16, Sapphire Rapids, Zen 4/5): the one
#               where llama.cpp's BF16 weights use vdpbf16ps. No AMX variant: this llama.cpp's AMX kernels
#               (ggml-cpu/amx, qtype_has_amx_kernels) serve quantised types only, not the F16/BF16 compared here.
# The archive also holds llama.cpp's pure-Python gguf package (gguf-py), which compare_llama_cpp.py imports to
# write the GGUF where `pip install gguf` is impossible. Every variant shares llama/common objects through ccache.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=$(realpath -m "${1:-.carry/llama}")
source bench/engine/llama_cpp_source.sh  # CACHE, VERSION, SRC
JOBS=${JOBS:-2}
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
common=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF -DGGML_BLAS=OFF
        -DGGML_OPENMP=ON -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF
        -DCMAKE_EXE_LINKER_FLAGS=-static "-DOpenMP_gomp_LIBRARY=$(gcc -print-file-name=libgomp.a)" "${launcher[@]}")
avx2=(-DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON)
avx512=("${avx2[@]}" -DGGML_AVX512=ON)
avx512bf16=("${avx512[@]}" -DGGML_AVX512_VBMI=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON)
STAGE=$CACHE/stage
rm -rf "$STAGE" && mkdir -p "$STAGE/bin" "$OUT"
for variant in ${VARIANTS:-avx2 avx512 avx512bf16}; do
  declare -n flags=$variant
  build=$CACHE/static-$variant
  echo "llama.cpp $VERSION: building llama-embedding ($variant) in $build" >&2
  cmake -S "$SRC" -B "$build" "${common[@]}" "${flags[@]}" > "$build.configure.log" 2>&1 ||
    { tail -20 "$build.configure.log"; exit 1; }
  cmake --build "$build" -j "$JOBS" --target llama-embedding > "$build.build.log" 2>&1 ||
    { tail -30 "$build.build.log"; exit 1; }
  strip -o "$STAGE/bin/llama-embedding-$variant" "$build/bin/llama-embedding"
done
cp -r "$SRC/gguf-py" "$STAGE/gguf-py"
find "$STAGE/gguf-py" -name __pycache__ -prune -exec rm -rf {} +
echo "$VERSION" > "$STAGE/VERSION"
tar -cJf "$OUT/llama-cpu.tar.xz" -C "$STAGE" .
ls -la "$STAGE/bin" "$OUT/llama-cpu.tar.xz" >&2
