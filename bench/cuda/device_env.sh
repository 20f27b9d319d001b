# What every bench/cuda/run_*.sh needs on the GPU machine, sourced first: the repository root as the working folder,
# $OUT, the binaries carried in .carry/cuda-bin.tar.xz ($BIN), step/serve helpers, the build checkout's path the test
# binaries expect, and where cuBLAS and NCCL are found.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
ROOT=$PWD
OUT=${OUT:-$ROOT/cuda-logs}
mkdir -p "$OUT"
BIN=$ROOT/.carry
if [ -f "$BIN/cuda-bin.tar.xz" ]; then
  mkdir -p /tmp/cuda-bin && tar -xJf "$BIN/cuda-bin.tar.xz" -C /tmp/cuda-bin && BIN=/tmp/cuda-bin
fi
status=0
step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }
# serve PORT LOG ARGS...: starts `embedserve serve --port PORT ARGS` in the background (stderr to LOG), waits up to
# 120 s for /health 200 (an 8B over two GPUs included), and leaves its pid in $served.
serve() {
  local port=$1 log=$2
  shift 2
  "$BIN/embedserve" serve --port "$port" "$@" > /dev/null 2> "$log" &
  served=$!
  for _ in $(seq 2400); do curl -sf "localhost:$port/health" > /dev/null 2>&1 && break; sleep 0.05; done
}

# random_checkpoint SIZE DIR LOG: the random-weight checkpoint of tests/data/configs/SIZE in DIR
# (bench/engine/make_random_checkpoint.py, its output to LOG), or the one an earlier step or call on the same warm
# machine completed there (DIR/model.safetensors.done).
random_checkpoint() {
  local size=$1 dir=$2 log=$3
  [ -f "$dir/model.safetensors.done" ] && return 0
  python3 bench/engine/make_random_checkpoint.py --config "tests/data/configs/$size" --out "$dir" > "$log" 2>&1 &&
    touch "$dir/model.safetensors.done"
}

# The test binaries carry the build machine's source paths (tests/data, the parity models' folder): BUILD_ROOT is
# the checkout they were built in (/work/main, or a worktree such as /work/wt-fp8).
BUILD_ROOT=${BUILD_ROOT:-/work/main}
if [ "$ROOT" != "$BUILD_ROOT" ] && [ ! -e "$BUILD_ROOT" ]; then mkdir -p "$(dirname "$BUILD_ROOT")" && ln -s "$ROOT" "$BUILD_ROOT"; fi

# cuBLAS and NCCL: the loader's path, else CUDA's folder, else pip's wheels (PyTorch's).
if ! ldconfig -p | grep -q 'libcublas.so.13' && [ ! -e /usr/local/cuda/lib64/libcublas.so.13 ]; then
  EMBEDSERVE_CUBLAS_PATH=$(python3 -c 'import nvidia.cublas, os; print(os.path.join(os.path.dirname(nvidia.cublas.__file__), "lib"))')
  export EMBEDSERVE_CUBLAS_PATH
fi
if ! ldconfig -p | grep -q 'libnccl.so.2' && [ ! -e /usr/local/cuda/lib64/libnccl.so.2 ]; then
  EMBEDSERVE_NCCL_PATH=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(os.path.dirname(nvidia.nccl.__file__), "lib"))' 2>/dev/null)
  [ -n "$EMBEDSERVE_NCCL_PATH" ] && export EMBEDSERVE_NCCL_PATH
fi
echo "EMBEDSERVE_CUBLAS_PATH=${EMBEDSERVE_CUBLAS_PATH:-(loader path)} EMBEDSERVE_NCCL_PATH=${EMBEDSERVE_NCCL_PATH:-(searched by embedserve)}"
# NVLink multicast stays off on these machines: embedserve forces NCCL_NVLS_ENABLE=0 itself; the tests' NCCL too.
export NCCL_NVLS_ENABLE=0
