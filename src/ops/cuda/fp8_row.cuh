// Device helper for kernels that end a GEMM input's row (add_rms_norm, SiLU·mul): the row quantised to e4m3 by
// the block that wrote it, with the rule of quantize_rows_e4m3, so the GEMM after it needs no pass of its own.
#pragma once

#include <cuda_fp8.h>

#include <cstdint>

#include "ops/cuda/cuda_dtype.h"

namespace embedserve::cuda {

// The largest of every thread's v over a block of `threads` threads (a multiple of 32, at most 1,024), returned to
// every thread. A maximum does not depend on the order it is taken in, so any split of a row gives the same one.
__device__ inline float block_max(float v, int threads) {
  __shared__ float partial[32];
  __shared__ float total;
  for (int offset = 16; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < threads / 32 ? partial[lane] : 0.0f;
    for (int offset = 16; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    if (lane == 0) total = v;
  }
  __syncthreads();
  return total;
}

// A row's scale from its largest magnitude: max|row| / 448 (1 for an all-zero row), an IEEE division, as
// core/float8.h's row_scale; each value's code is e4m3(value / scale), saturating.
__device__ inline float e4m3_row_scale(float amax) { return amax > 0.0f ? amax / 448.0f : 1.0f; }
__device__ inline uint8_t e4m3_code(float v, float scale) {
  return static_cast<uint8_t>(__nv_cvt_float_to_fp8(v / scale, __NV_SATFINITE, __NV_E4M3));
}

// e4m3_code(v, scale) for every v of one row, with the row's reciprocal of scale taken once: q = v · r, corrected
// once by FMA, is v / scale rounded to nearest (Markstein's theorem: r = 1/scale rounded to nearest, q within an ulp
// of the quotient, the remainder v − q·scale exact by FMA), which is the division's result, so the codes are the
// same. Rows whose scale is tiny (the remainder could fall below float's normal range, failing the theorem's
// premise) or infinite (a row holding an infinity: v / inf is 0, v · 0 corrected by inf is not) keep the division.
// IEEE division per value was a large share of the FP8 SwiGLU's issued instructions (docs/PERFORMANCE.md,
// 2026-12-01). ops_cuda's Fp8Cuda.RowCodesByReciprocalAreTheDivisionsForEveryBf16ValueAndRowScale compares every
// bf16 value against every row scale a bf16 row can have, exhaustively.
struct E4m3RowCoder {
  float scale, reciprocal;  // the reciprocal's one division is per row
  bool divide;
  __device__ explicit E4m3RowCoder(float s)
      : scale(s), reciprocal(1.0f / s), divide(!(s >= 0x1p-80f && s <= 3.0e38f)) {}
  __device__ uint8_t code(float v) const {
    if (divide) return e4m3_code(v, scale);
    const float q = v * reciprocal;
    // A zero keeps its sign as the division does (the correction would add +0 to −0).
    const float quotient = v == 0.0f ? v : fmaf(fmaf(-q, scale, v), reciprocal, q);
    return static_cast<uint8_t>(__nv_cvt_float_to_fp8(quotient, __NV_SATFINITE, __NV_E4M3));
  }
};

// Called by every thread of a block of `threads` (a multiple of 32, at most 1,024) once the block has written
// row[0, cols): q[c] = e4m3(row[c] / scale), *scale_out = max|row| / 448 (1 for an all-zero row). The values are
// read back as stored (rounded to T), exactly what a separate quantize_rows_e4m3 pass would read.
template <typename T>
__device__ inline void quantize_written_row(const T* row, int64_t cols, int threads, uint8_t* __restrict__ q,
                                            float* __restrict__ scale_out) {
  __syncthreads();  // the other threads' writes of the row
  float amax = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += threads) amax = fmaxf(amax, fabsf(to_f32(row[c])));
  const float scale = e4m3_row_scale(block_max(amax, threads));
  for (int64_t c = threadIdx.x; c < cols; c += threads) q[c] = e4m3_code(to_f32(row[c]), scale);
  if (threadIdx.x == 0) *scale_out = scale;
}

// The same for a bf16 row the block holds in registers as it wrote it: each thread its packs of 8 values, pack
// i = threadIdx.x + j·threads for j < kHeld while i < packs. Nothing is read back from memory, and the codes go
// out 8 bytes at a time (q 8-byte aligned); the codes and scale are those quantize_written_row gives.
template <int kHeld, typename Pack>
__device__ inline void quantize_held_row(const Pack (&held)[kHeld], int packs, int threads, uint8_t* __restrict__ q,
                                         float* __restrict__ scale_out) {
  static_assert(sizeof(Pack) == 16, "packs of 8 bf16");
  // The largest magnitude on bf16 pairs: |x| and the maximum are exact in bf16 (and a NaN is passed over, as fmaxf
  // does), so this is the maximum of the widened values, in a quarter of the instructions.
  __nv_bfloat162 pair_max = __float2bfloat162_rn(0.0f);
#pragma unroll
  for (int j = 0; j < kHeld; ++j) {
    if (static_cast<int>(threadIdx.x) + j * threads >= packs) break;
    const auto* pairs = reinterpret_cast<const __nv_bfloat162*>(&held[j]);
#pragma unroll
    for (int e = 0; e < 4; ++e) pair_max = __hmax2(pair_max, __habs2(pairs[e]));
  }
  const float amax = fmaxf(__low2float(pair_max), __high2float(pair_max));
  const float scale = e4m3_row_scale(block_max(amax, threads));
  const E4m3RowCoder coder(scale);
#pragma unroll
  for (int j = 0; j < kHeld; ++j) {
    const int i = static_cast<int>(threadIdx.x) + j * threads;
    if (i >= packs) break;
    union {
      uint8_t b[8];
      uint2 u;
    } codes;
#pragma unroll
    for (int e = 0; e < 8; ++e) codes.b[e] = coder.code(to_f32(held[j].v[e]));
    reinterpret_cast<uint2*>(q)[i] = codes.u;
  }
  if (threadIdx.x == 0) *scale_out = scale;
}

}  // namespace embedserve::cuda
