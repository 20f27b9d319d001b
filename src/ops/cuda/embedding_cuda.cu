// embedding: one thread per output element; consecutive threads copy consecutive columns of one row.
#include "ops/cuda/embedding_cuda.h"

#include <cuda_bf16.h>

#include <string>

#include "ops/cuda/cuda_check.h"

namespace embedserve::cuda {
namespace {

template <typename T>
__global__ void embedding_kernel(const T* __restrict__ table, int64_t dim, const int32_t* __restrict__ ids,
                                 int64_t total, T* __restrict__ out) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t row = i / dim, col = i % dim;
    out[i] = table[int64_t{ids[row]} * dim + col];
  }
}

}  // namespace

template <typename T>
Status embedding(const T* table, int64_t dim, const int32_t* ids, int64_t n, T* out, cudaStream_t stream) {
  if (dim <= 0 || n < 0) return invalid_argument("embedding: bad shape [" + std::to_string(n) + ", " + std::to_string(dim) + "]");
  if (n == 0) return Status();
  const int64_t total = n * dim;
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((total + threads - 1) / threads, 65536);
  embedding_kernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(table, dim, ids, total, out);
  return cuda_status(cudaGetLastError(), "embedding launch");
}

template Status embedding<float>(const float*, int64_t, const int32_t*, int64_t, float*, cudaStream_t);
template Status embedding<__nv_bfloat16>(const __nv_bfloat16*, int64_t, const int32_t*, int64_t, __nv_bfloat16*,
                                         cudaStream_t);

}  // namespace embedserve::cuda
