// round_sum: an all-reduced f32 sum rounded once into the context's dtype.
#include <cuda_bf16.h>

#include <algorithm>

#include "ops/cuda/cuda_check.h"
#include "ops/cuda/nccl_communicator.h"

namespace embedserve::ops::cuda_backend {
namespace {

template <typename T>
__global__ void round_kernel(const float* __restrict__ in, T* __restrict__ out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    out[i] = static_cast<T>(in[i]);  // __nv_bfloat16(float) rounds to nearest even
}

}  // namespace

template <typename T>
Status round_sum(const float* partial, T* sum, int64_t n, cudaStream_t stream) {
  if (n <= 0) return Status();
  const int threads = 256;
  const int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, 65535);
  round_kernel<T><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(partial, sum, n);
  return cuda::cuda_status(cudaGetLastError(), "round_sum launch");
}

template Status round_sum<float>(const float*, float*, int64_t, cudaStream_t);
template Status round_sum<__nv_bfloat16>(const float*, __nv_bfloat16*, int64_t, cudaStream_t);

}  // namespace embedserve::ops::cuda_backend
