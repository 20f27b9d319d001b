// quantize_rows_e4m3 and scale_rows_columns: one block per row, f32 arithmetic, CUDA's saturating e4m3 rounding.
#include "ops/cuda/fp8_cuda.h"

#include <cuda_fp8.h>

#include <algorithm>
#include <cstdint>

#include "ops/cuda/cuda_check.h"
#include "ops/cuda/fp8_row.cuh"

namespace embedserve::cuda {
namespace {

constexpr int kThreads = 256;
// One block per row. Rows whose length is a multiple of 8 (every projection of the real models) move 8 bf16 per
// 16-byte load and 8 codes per 8-byte store; the arithmetic per element is the same either way.
template <bool kVector>
__global__ void quantize_rows_kernel(const __nv_bfloat16* __restrict__ x, int64_t k, uint8_t* __restrict__ q,
                                     float* __restrict__ scales) {
  const __nv_bfloat16* row = x + blockIdx.x * k;
  uint8_t* out = q + blockIdx.x * k;
  float amax = 0.0f;
  // The max is exact in any order, so the thread layout cannot change a row's scale.
  if constexpr (kVector) {
    for (int64_t c = threadIdx.x * 8; c < k; c += kThreads * 8) {
      const uint4 pack = *reinterpret_cast<const uint4*>(row + c);
      const __nv_bfloat162* v = reinterpret_cast<const __nv_bfloat162*>(&pack);
      for (int i = 0; i < 4; ++i) {
        const float2 f = __bfloat1622float2(v[i]);
        amax = fmaxf(amax, fmaxf(fabsf(f.x), fabsf(f.y)));
      }
    }
  } else {
    for (int64_t c = threadIdx.x; c < k; c += kThreads) amax = fmaxf(amax, fabsf(__bfloat162float(row[c])));
  }
  const float scale = e4m3_row_scale(block_max(amax, kThreads));
  if constexpr (kVector) {
    for (int64_t c = threadIdx.x * 8; c < k; c += kThreads * 8) {
      const uint4 pack = *reinterpret_cast<const uint4*>(row + c);
      const __nv_bfloat162* v = reinterpret_cast<const __nv_bfloat162*>(&pack);
      uint8_t codes[8];
      for (int i = 0; i < 4; ++i) {
        const float2 f = __bfloat1622float2(v[i]);
        codes[2 * i] = e4m3_code(f.x, scale);
        codes[2 * i + 1] = e4m3_code(f.y, scale);
      }
      *reinterpret_cast<uint2*>(out + c) = *reinterpret_cast<const uint2*>(codes);
    }
  } else {
    for (int64_t c = threadIdx.x; c < k; c += kThreads)
      out[c] = e4m3_code(__bfloat162float(row[c]), scale);
  }
  if (threadIdx.x == 0) scales[blockIdx.x] = scale;
}

__global__ void scale_kernel(__nv_bfloat16* __restrict__ y, int64_t n, const float* __restrict__ row_scales,
                             const float* __restrict__ col_scales) {
  __nv_bfloat16* row = y + blockIdx.x * n;
  const float r = row_scales[blockIdx.x];
  for (int64_t c = threadIdx.x; c < n; c += kThreads)
    row[c] = __float2bfloat16(__bfloat162float(row[c]) * r * col_scales[c]);
}

}  // namespace

Status quantize_rows_e4m3(const __nv_bfloat16* x, int64_t m, int64_t k, uint8_t* q, float* scales, cudaStream_t stream) {
  if (m < 0 || k <= 0 || m > (int64_t{1} << 31) - 1) return invalid_argument("quantize_rows_e4m3: bad shape");
  if (m == 0) return Status();
  // Rows stay 16-byte aligned (bf16) and 8-byte aligned (codes) when k is a multiple of 8 and the bases are.
  const bool vector = k % 8 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(q) % 8 == 0;
  if (vector)
    quantize_rows_kernel<true><<<static_cast<unsigned>(m), kThreads, 0, stream>>>(x, k, q, scales);
  else
    quantize_rows_kernel<false><<<static_cast<unsigned>(m), kThreads, 0, stream>>>(x, k, q, scales);
  return cuda_status(cudaGetLastError(), "quantize_rows_e4m3 launch");
}

Status scale_rows_columns(__nv_bfloat16* y, int64_t m, int64_t n, const float* row_scales, const float* col_scales,
                          cudaStream_t stream) {
  if (m < 0 || n <= 0 || m > (int64_t{1} << 31) - 1) return invalid_argument("scale_rows_columns: bad shape");
  if (m == 0) return Status();
  scale_kernel<<<static_cast<unsigned>(m), kThreads, 0, stream>>>(y, n, row_scales, col_scales);
  return cuda_status(cudaGetLastError(), "scale_rows_columns launch");
}

}  // namespace embedserve::cuda
