#!/usr/bin/env bash
# Builds llama.cpp's llama-embedding with its CUDA backend (sm_90 only) into one archive that the GPU machine (no
# compiler, no package registry) unpacks, so llama.cpp's CUDA backend and embedserve's run on the same H200 and the
# same random checkpoint (compare_llama_cpp.py --llama-embedding). Sources: the llama-cpp-python sdist
# compare_llama_cpp.py caches (vendor/llama.cpp), as bench/engine/build_llama_cpp_static.sh does for the CPU.
#   bash bench/engine/build_llama_cpp_cuda.sh [OUT_DIR]        # default .carry/llama (git-ignored)
# writes OUT_DIR/llama-cuda.tar.xz: bin/llama-embedding-cuda, gguf-py/, VERSION. Tens of minutes on 2 cores.
# Linking, for a machine that has the driver and pip's cuBLAS wheel but no CUDA toolkit:
#   - the CUDA runtime statically: llama.cpp links CUDA::cudart unless GGML_STATIC, and GGML_STATIC also wants
#     cublas_static, which the toolkit here lacks (and which would add hundreds of MiB); so GGML_STATIC stays off
#     and FindCUDAToolkit's CUDA_cudart_LIBRARY is pointed at libcudart_static.a, which CUDA::cudart then links;
#   - cuBLAS dynamically (libcublas.so.13, libcublasLt.so.13), found on the GPU machine through LD_LIBRARY_PATH:
#       LD_LIBRARY_PATH=$(python3 -c 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__))')/lib
#     the binary carries no RPATH, so the loader's path or LD_LIBRARY_PATH alone decides;
#   - libcuda.so.1 (the driver's, for llama.cpp's VMM pool) dynamically; libgomp, libstdc++, libgcc statically;
#   - no NCCL (GGML_CUDA_NCCL would link the toolkit's libnccl.so.2; one GPU needs none).
# Host code at the avx2 level of build_llama_cpp_static.sh (GGML_NATIVE=OFF), which every H200 host's CPU runs.
# Device code: CUDA_ARCHS (default 90-real: sm_90 machine code only). Plain 90 adds compute_90 PTX, which an H200
# never JIT-compiles and which takes the archive from 21 to 40 MiB (nvcc already compresses the fatbin, xz can't).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=$(realpath -m "${1:-.carry/llama}")
source bench/engine/llama_cpp_source.sh  # CACHE, VERSION, SRC
JOBS=${JOBS:-2}
CUDA_ARCHS=${CUDA_ARCHS:-90-real}
CUDA=${CUDA_HOME:-/usr/local/cuda}
launcher=()
command -v ccache > /dev/null && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
                                           -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
flags=(-G Ninja -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_NATIVE=OFF -DGGML_BLAS=OFF
       -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
       -DGGML_CUDA=ON "-DCMAKE_CUDA_ARCHITECTURES=$CUDA_ARCHS" "-DCMAKE_CUDA_COMPILER=$CUDA/bin/nvcc" -DGGML_STATIC=OFF
       -DGGML_CUDA_FA_ALL_QUANTS=OFF -DGGML_CUDA_NCCL=OFF "-DCUDA_cudart_LIBRARY=$CUDA/lib64/libcudart_static.a"
       -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF
       -DGGML_OPENMP=ON "-DOpenMP_gomp_LIBRARY=$(gcc -print-file-name=libgomp.a)"
       "-DCMAKE_EXE_LINKER_FLAGS=-static-libstdc++ -static-libgcc" -DCMAKE_SKIP_RPATH=ON "${launcher[@]}")
build=$CACHE/cuda
STAGE=$CACHE/stage-cuda
rm -rf "$STAGE" && mkdir -p "$STAGE/bin" "$OUT"
echo "llama.cpp $VERSION: building llama-embedding (CUDA $CUDA_ARCHS) in $build" >&2
cmake -S "$SRC" -B "$build" "${flags[@]}" > "$build.configure.log" 2>&1 || { tail -20 "$build.configure.log"; exit 1; }
cmake --build "$build" -j "$JOBS" --target llama-embedding > "$build.build.log" 2>&1 ||
  { tail -30 "$build.build.log"; exit 1; }
strip -o "$STAGE/bin/llama-embedding-cuda" "$build/bin/llama-embedding"
# The runtime must not be a shared library the GPU machine lacks; cuBLAS must be the one it has.
deps=$(readelf -d "$STAGE/bin/llama-embedding-cuda" | grep NEEDED)
if grep -q libcudart <<< "$deps" || ! grep -q 'libcublas.so.13' <<< "$deps"; then
  echo "unexpected shared libraries (want no libcudart, want libcublas.so.13):" >&2; echo "$deps" >&2; exit 1
fi
cp -r "$SRC/gguf-py" "$STAGE/gguf-py"
find "$STAGE/gguf-py" -name __pycache__ -prune -exec rm -rf {} +
echo "$VERSION" > "$STAGE/VERSION"
tar -cJf "$OUT/llama-cuda.tar.xz" -C "$STAGE" .
ls -la "$STAGE/bin" "$OUT/llama-cuda.tar.xz" >&2
