// RMSNorm on the GPU (layer norms, q_norm, k_norm), alone and fused with the ops beside it in a decoder layer.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/status.h"

namespace embedserve::cuda {

// out[r, :] = weight * T(x[r, :] * rsqrt(mean(x[r, :]²) + eps)), the sum of squares in f32 — the rounding order of
// transformers' Qwen3RMSNorm (normalise in f32, cast to T, then multiply by the T weight). x, out T [rows, cols]
// (may alias); weight T [cols]. T is float (the parity mode) or __nv_bfloat16.
template <typename T>
Status rms_norm(const T* x, const T* weight, T* out, int64_t rows, int64_t cols, float eps, cudaStream_t stream);

// residual = T(residual + delta), then out = rms_norm(residual) — bitwise add() followed by rms_norm(), in one
// pass. out may alias delta. With q set, out's rows are also quantised to e4m3 (q [rows, cols], q_scales f32
// [rows]) as quantize_rows_e4m3 would quantise them: the input of the FP8 GEMM that follows.
template <typename T>
Status add_rms_norm(T* residual, const T* delta, const T* weight, T* out, int64_t rows, int64_t cols, float eps,
                    cudaStream_t stream, uint8_t* q = nullptr, float* q_scales = nullptr);

// The angles of a batch's rows, once per batch instead of once per layer and head (cos and sin with full range
// reduction are most of the rotation's work otherwise): cos_table, sin_table f32 [n, half] = rope_angle<T>(
// float(positions[r]), inv_freq[f]), each already rounded to T as the rotation uses it.
template <typename T>
Status rope_tables(const int32_t* positions, const float* inv_freq, int64_t n, int half, float* cos_table,
                   float* sin_table, cudaStream_t stream);

// One tensor's heads for qk_norm_rope: x T [n, heads, head_dim] with rows `stride` elements apart, and its norm
// weight T [head_dim]. heads 0: none.
template <typename T>
struct NormRopeHeads {
  T* x = nullptr;
  int64_t stride = 0;
  const T* weight = nullptr;
  int heads = 0;
};

// In place on a's and b's heads (k and q of one batch's n rows, in one launch where the warp kernel takes them):
// rms_norm of each head's row with its tensor's weight, then RoPE's rotation by row r's angles in rope_tables'
// cos_table/sin_table [n, head_dim / 2] (norm_row.cuh's rope_rotate), in one pass. head_dim 64/128/256 take a
// warp per head (the sum of squares reduced in another order: equal to the two ops to rounding); other sizes
// bitwise the two ops.
template <typename T>
Status qk_norm_rope(NormRopeHeads<T> a, NormRopeHeads<T> b, const float* cos_table, const float* sin_table, int64_t n,
                    int head_dim, float eps, cudaStream_t stream);

}  // namespace embedserve::cuda
