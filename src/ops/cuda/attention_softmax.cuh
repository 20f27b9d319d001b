// The online softmax step both tensor-core attention kernels run on a key tile, in the accumulator layout that
// mma.sync.m16n8 and wgmma.m64nN share: a thread holds rows g and g + 8 of its warp's 16, and s[4n + e] is key
// 8n + 2t + e % 2 of row g (e < 2) or of row g + 8 (e ≥ 2), with g = lane / 4 and t = lane % 4.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "ops/cuda/mma_util.cuh"

namespace embedserve::cuda {

// 2^x on the special function unit, subnormal results flushed to 0. exp2f compiles to the same MUFU.EX2 wrapped in a
// test and two multiplies that keep subnormal results: four instructions a value, which with the tile copies' address
// arithmetic held the wgmma kernel to the rate it could issue instructions (docs/PERFORMANCE.md, 2026-12-02 13:45).
// The values differ only where 2^x < 2^-126, a probability that no sum or product here can notice (every row's sum is
// at least 1, its largest score's p).
__device__ __forceinline__ float exp2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// Running state of a thread's two rows: maxima of the raw scores (the scale is applied inside exp2's argument)
// and the thread's partial sums of the probabilities (the 4 threads of a row add theirs at the end).
struct SoftmaxRows {
  float m_lo = -INFINITY, m_hi = -INFINITY, l_lo = 0.0f, l_hi = 0.0f;
};

// The online softmax in three parts, so a kernel can overlap them with its products (the wgmma kernel computes
// a tile's probabilities while the tensor cores add the previous tile's p·v, and rounds them for its own only then).
//
// softmax_rescale: masks keys past each row's position (when `masked`: the tile reaches past the nearest row),
// raises the rows' maxima and returns in alpha the factors the rows' running outputs and sums must be multiplied
// by. A row whose maximum this tile does not raise keeps alpha exactly 1, and (softmax_probabilities) a key it
// cannot see adds exactly 0, so a tile of keys all past a row leaves it bitwise as it was: a row's output then does
// not depend on how far the other rows of its tile reach (chunks and batches tile rows differently).
// s: the tile's kKeys / 2 scores of the thread.
template <int kKeys>
__device__ __forceinline__ void softmax_rescale(float* s, int k0, int pos_lo, int pos_hi, bool masked,
                                                float scale_log2, SoftmaxRows& rows, float& alpha_lo,
                                                float& alpha_hi) {
  constexpr unsigned kFull = 0xffffffffu;
  const int t = (threadIdx.x % 32) % 4;
  if (masked) {
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int key = k0 + n * 8 + 2 * t + e;
        if (key > pos_lo) s[4 * n + e] = -INFINITY;
        if (key > pos_hi) s[4 * n + 2 + e] = -INFINITY;
      }
  }
  float mx_lo = rows.m_lo, mx_hi = rows.m_hi;
#pragma unroll
  for (int n = 0; n < kKeys / 8; ++n) {
    mx_lo = fmaxf(mx_lo, fmaxf(s[4 * n], s[4 * n + 1]));
    mx_hi = fmaxf(mx_hi, fmaxf(s[4 * n + 2], s[4 * n + 3]));
  }
  for (int x = 1; x < 4; x *= 2) {
    mx_lo = fmaxf(mx_lo, __shfl_xor_sync(kFull, mx_lo, x));
    mx_hi = fmaxf(mx_hi, __shfl_xor_sync(kFull, mx_hi, x));
  }
  // A row that has seen no key yet (or is past the tile's end) keeps max -inf: exp2's argument then subtracts 0
  // (softmax_probabilities), so it gives 0, never NaN.
  alpha_lo = mx_lo == rows.m_lo ? 1.0f : exp2_ftz(fmaf(rows.m_lo, scale_log2, -mx_lo * scale_log2));
  alpha_hi = mx_hi == rows.m_hi ? 1.0f : exp2_ftz(fmaf(rows.m_hi, scale_log2, -mx_hi * scale_log2));
  rows.m_lo = mx_lo;
  rows.m_hi = mx_hi;
  rows.l_lo *= alpha_lo;
  rows.l_hi *= alpha_hi;
}

// softmax_probabilities: p = exp2(scale · s − max) in f32, in place of the scores, added to the rows' sums.
template <int kKeys>
__device__ __forceinline__ void softmax_probabilities(float* s, float scale_log2, SoftmaxRows& rows) {
  const float base_lo = rows.m_lo == -INFINITY ? 0.0f : rows.m_lo * scale_log2;
  const float base_hi = rows.m_hi == -INFINITY ? 0.0f : rows.m_hi * scale_log2;
  float sum_lo = 0.0f, sum_hi = 0.0f;
#pragma unroll
  for (int n = 0; n < kKeys / 8; ++n) {
    s[4 * n] = exp2_ftz(fmaf(s[4 * n], scale_log2, -base_lo));
    s[4 * n + 1] = exp2_ftz(fmaf(s[4 * n + 1], scale_log2, -base_lo));
    s[4 * n + 2] = exp2_ftz(fmaf(s[4 * n + 2], scale_log2, -base_hi));
    s[4 * n + 3] = exp2_ftz(fmaf(s[4 * n + 3], scale_log2, -base_hi));
    sum_lo += s[4 * n] + s[4 * n + 1];
    sum_hi += s[4 * n + 2] + s[4 * n + 3];
  }
  rows.l_lo += sum_lo;
  rows.l_hi += sum_hi;
}

// p rounded to bf16 as the A fragments of the p·v product (pa[kk]: keys 16kk..16kk+15, mma.sync's and wgmma's
// register layout).
template <int kKeys>
__device__ __forceinline__ void pack_probabilities(const float* p, uint32_t (&pa)[kKeys / 16][4]) {
#pragma unroll
  for (int n = 0; n < kKeys / 8; ++n) {
    pa[n / 2][(n % 2) * 2] = pack_bf16(p[4 * n], p[4 * n + 1]);
    pa[n / 2][(n % 2) * 2 + 1] = pack_bf16(p[4 * n + 2], p[4 * n + 3]);
  }
}

// Both parts at once, for a kernel with nothing to do between them.
template <int kKeys>
__device__ __forceinline__ void softmax_tile(float* s, int k0, int pos_lo, int pos_hi, bool masked, float scale_log2,
                                             SoftmaxRows& rows, uint32_t (&pa)[kKeys / 16][4], float& alpha_lo,
                                             float& alpha_hi) {
  softmax_rescale<kKeys>(s, k0, pos_lo, pos_hi, masked, scale_log2, rows, alpha_lo, alpha_hi);
  softmax_probabilities<kKeys>(s, scale_log2, rows);
  pack_probabilities<kKeys>(s, pa);
}

// The rows' whole sums, once every key tile is done: the 4 threads of each row add their partial sums.
__device__ __forceinline__ void finish_sums(SoftmaxRows& rows) {
  for (int x = 1; x < 4; x *= 2) {
    rows.l_lo += __shfl_xor_sync(0xffffffffu, rows.l_lo, x);
    rows.l_hi += __shfl_xor_sync(0xffffffffu, rows.l_hi, x);
  }
}

// Multiplies the thread's two rows of running output by the factors softmax_rescale returned: kCols / 2
// accumulators, o[4n + e] column 8n + 2t + e % 2 of row g (e < 2) or of row g + 8, as mma.sync's and wgmma's
// accumulators of the p·v product lie.
template <int kCols>
__device__ __forceinline__ void rescale_outputs(float* o, float alpha_lo, float alpha_hi) {
#pragma unroll
  for (int n = 0; n < kCols / 8; ++n) {
    o[4 * n] *= alpha_lo;
    o[4 * n + 1] *= alpha_lo;
    o[4 * n + 2] *= alpha_hi;
    o[4 * n + 3] *= alpha_hi;
  }
}

// The thread's two rows of output (rescale_outputs' layout) divided by the rows' whole sums (finish_sums), as bf16
// from out_lo / out_hi, each its row's column 2t. A row marked absent is not written.
template <int kCols>
__device__ __forceinline__ void store_outputs(const float* o, const SoftmaxRows& rows, __nv_bfloat16* out_lo,
                                              bool has_lo, __nv_bfloat16* out_hi, bool has_hi) {
  const float inv_lo = 1.0f / rows.l_lo, inv_hi = 1.0f / rows.l_hi;
#pragma unroll
  for (int n = 0; n < kCols / 8; ++n) {
    if (has_lo) *reinterpret_cast<uint32_t*>(out_lo + n * 8) = pack_bf16(o[4 * n] * inv_lo, o[4 * n + 1] * inv_lo);
    if (has_hi) *reinterpret_cast<uint32_t*>(out_hi + n * 8) = pack_bf16(o[4 * n + 2] * inv_hi, o[4 * n + 3] * inv_hi);
  }
}

}  // namespace embedserve::cuda
