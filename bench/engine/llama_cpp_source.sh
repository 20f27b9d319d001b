# Sourced by the llama.cpp build scripts (build_llama_cpp_static.sh, build_llama_cpp_cuda.sh): sets CACHE, VERSION
# and SRC, llama.cpp's sources from the llama-cpp-python sdist (vendor/llama.cpp) that compare_llama_cpp.py uses too,
# downloaded and unpacked into the cache once (outside the repository: nothing of llama.cpp is kept in it).
CACHE=${LLAMA_CACHE:-$HOME/.cache/embedserve-llama-cpp}
VERSION=0.3.36
SRC=$CACHE/src/llama_cpp_python-$VERSION/vendor/llama.cpp
if [ ! -d "$SRC" ]; then
  SDIST=$CACHE/llama_cpp_python-$VERSION.tar.gz
  [ -f "$SDIST" ] || python3 -m pip download "llama-cpp-python==$VERSION" --no-deps --no-binary :all: -d "$CACHE"
  mkdir -p "$CACHE/src" && tar -xzf "$SDIST" -C "$CACHE/src"
fi
