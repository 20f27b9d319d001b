// apply_rope: one thread per rotated pair (row, head, i < head_dim/2); explicit _rn intrinsics keep nvcc
// from contracting into FMAs, which would skip the roundings torch performs.
#include "ops/cuda/rope_cuda.h"

#include <cuda_bf16.h>

#include <algorithm>

#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_dtype.h"

namespace embedserve::cuda {
namespace {

template <typename T>
__global__ void rope_kernel(T* __restrict__ x, const int32_t* __restrict__ positions,
                            const float* __restrict__ inv_freq, int heads, int head_dim, int64_t total) {
  const int half = head_dim / 2;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{gridDim.x} * blockDim.x) {
    const int f = static_cast<int>(i % half);
    const int64_t row_head = i / half;
    const int64_t row = row_head / heads;
    // cosf/sinf with full range reduction (no fast math): angles reach 4e4 rad at 40k positions.
    const float angle = __fmul_rn(static_cast<float>(positions[row]), inv_freq[f]);
    const float c = round_to<T>(cosf(angle));
    const float s = round_to<T>(sinf(angle));
    T* p = x + row_head * head_dim;
    const float x1 = to_f32(p[f]), x2 = to_f32(p[f + half]);
    p[f] = from_f32<T>(__fadd_rn(round_to<T>(__fmul_rn(x1, c)), round_to<T>(__fmul_rn(-x2, s))));
    p[f + half] = from_f32<T>(__fadd_rn(round_to<T>(__fmul_rn(x2, c)), round_to<T>(__fmul_rn(x1, s))));
  }
}

}  // namespace

template <typename T>
Status apply_rope(T* x, const int32_t* positions, const float* inv_freq, int64_t n, int heads, int head_dim,
                  cudaStream_t stream) {
  if (n < 0 || heads <= 0 || head_dim <= 0 || head_dim % 2 != 0) return invalid_argument("apply_rope: bad shape");
  if (n == 0) return Status();
  const int64_t total = n * heads * (head_dim / 2);
  const int threads = 256;
  const auto blocks = static_cast<unsigned>(std::min<int64_t>((total + threads - 1) / threads, 65536));
  rope_kernel<<<blocks, threads, 0, stream>>>(x, positions, inv_freq, heads, head_dim, total);
  return cuda_status(cudaGetLastError(), "apply_rope launch");
}

template Status apply_rope<float>(float*, const int32_t*, const float*, int64_t, int, int, cudaStream_t);
template Status apply_rope<__nv_bfloat16>(__nv_bfloat16*, const int32_t*, const float*, int64_t, int, int,
                                          cudaStream_t);

}  // namespace embedserve::cuda
