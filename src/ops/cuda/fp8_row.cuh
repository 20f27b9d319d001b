// Device helper for kernels that end a GEMM input's row (add_rms_norm, SiLU·mul): the row quantised to e4m3 by
// the block that wrote it, with the rule of quantize_rows_e4m3, so the GEMM after it needs no pass of its own.
#pragma once

#include <cuda_fp8.h>

#include <cstdint>

#include "ops/cuda/cuda_dtype.h"

namespace embedserve::cuda {

// Called by every thread of a block of `threads` (a multiple of 32, at most 1,024) once the block has written
// row[0, cols): q[c] = e4m3(row[c] / scale), *scale_out = max|row| / 448 (1 for an all-zero row). The values are
// read back as stored (rounded to T), exactly what a separate quantize_rows_e4m3 pass would read.
template <typename T>
__device__ inline void quantize_written_row(const T* row, int64_t cols, int threads, uint8_t* __restrict__ q,
                                            float* __restrict__ scale_out) {
  __shared__ float partial[32];
  __shared__ float total;
  __syncthreads();  // the other threads' writes of the row
  float amax = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += threads) amax = fmaxf(amax, fabsf(to_f32(row[c])));
  for (int offset = 16; offset > 0; offset /= 2) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, offset));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) partial[warp] = amax;
  __syncthreads();
  if (warp == 0) {
    amax = lane < threads / 32 ? partial[lane] : 0.0f;
    for (int offset = 16; offset > 0; offset /= 2) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, offset));
    if (lane == 0) total = amax;
  }
  __syncthreads();
  const float scale = total > 0.0f ? total / 448.0f : 1.0f;  // IEEE division, as core/float8.h's row_scale
  for (int64_t c = threadIdx.x; c < cols; c += threads)
    q[c] = static_cast<uint8_t>(__nv_cvt_float_to_fp8(to_f32(row[c]) / scale, __NV_SATFINITE, __NV_E4M3));
  if (threadIdx.x == 0) *scale_out = scale;
}

}  // namespace embedserve::cuda
