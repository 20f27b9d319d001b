// Device helpers shared by every kernel that RMS-normalises a row (rms_norm, add_rms_norm, qk_norm_rope): one
// block of kNormThreads threads per row, the same per-thread order of the sum of squares and the same block
// reduction everywhere, so a fused kernel gives bitwise the result of the ops it fuses.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "ops/cuda/cuda_dtype.h"

namespace embedserve::cuda {

constexpr int kNormThreads = 256;  // 8 warps: enough loads in flight for hidden sizes 1024–4096

// The sum of v over a block of kNormThreads threads, returned to every thread: warp shuffles, then warp 0 over the
// warps' partial sums. float for the norms; double for pooling's sums.
template <typename V>
__device__ inline V block_sum(V v) {
  __shared__ V partial[kNormThreads / 32];
  __shared__ V total;
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < kNormThreads / 32 ? partial[lane] : V(0);
  if (warp == 0)
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  if (threadIdx.x == 0) total = v;
  __syncthreads();
  return total;
}

// Elements per 16-byte access: a row takes the packed path when its length and address allow it.
template <typename T>
constexpr int kNormPack = sizeof(T) == 2 ? 8 : 1;  // bf16 rows move 8 per load; f32 rows stay scalar

template <typename T>
struct alignas(16) NormPack {
  T v[kNormPack<T>];
};

// One pack's share of the work, in the element order every kernel below keeps (so kernels that hold packs in
// registers and kernels that loop over the row give the same bits): the residual add, T(a + b); the squares added
// to ss; Qwen3RMSNorm's scale, w · T(x · r). Callers load each pack into a local first: a reference into global
// memory is read element by element, not in one 16-byte load.
template <typename T>
__device__ inline NormPack<T> add_pack(NormPack<T> a, const NormPack<T>& b) {
#pragma unroll
  for (int k = 0; k < kNormPack<T>; ++k) a.v[k] = from_f32<T>(to_f32(a.v[k]) + to_f32(b.v[k]));
  return a;
}
template <typename T>
__device__ inline void add_squares(float& ss, const NormPack<T>& p) {
#pragma unroll
  for (int k = 0; k < kNormPack<T>; ++k) {
    const float f = to_f32(p.v[k]);
    ss += f * f;
  }
}
template <typename T>
__device__ inline NormPack<T> scale_pack(const NormPack<T>& x, const NormPack<T>& w, float r) {
  NormPack<T> o;
#pragma unroll
  for (int k = 0; k < kNormPack<T>; ++k) o.v[k] = from_f32<T>(to_f32(w.v[k]) * round_to<T>(to_f32(x.v[k]) * r));
  return o;
}

// The sum of squares of row[0, cols) as this thread contributes it, packed (8 bf16 per load) or scalar.
template <typename T, bool kPacked>
__device__ inline float row_squares(const T* __restrict__ row, int64_t cols) {
  float ss = 0.0f;
  if constexpr (kPacked) {
    const auto* p = reinterpret_cast<const NormPack<T>*>(row);
    for (int64_t i = threadIdx.x; i < cols / kNormPack<T>; i += kNormThreads) {
      const NormPack<T> pack = p[i];
      add_squares<T>(ss, pack);
    }
  } else {
    for (int64_t c = threadIdx.x; c < cols; c += kNormThreads) {
      const float v = to_f32(row[c]);
      ss += v * v;
    }
  }
  return ss;
}

// out[c] = w[c] * T(row[c] * r): Qwen3RMSNorm's order (normalise in f32, round to T, then the weight).
template <typename T, bool kPacked>
__device__ inline void row_scale(const T* __restrict__ row, const T* __restrict__ w, float r, T* out, int64_t cols) {
  if constexpr (kPacked) {
    const auto* p = reinterpret_cast<const NormPack<T>*>(row);
    const auto* wp = reinterpret_cast<const NormPack<T>*>(w);
    auto* op = reinterpret_cast<NormPack<T>*>(out);
    for (int64_t i = threadIdx.x; i < cols / kNormPack<T>; i += kNormThreads) {
      const NormPack<T> pack = p[i], wpack = wp[i];
      op[i] = scale_pack<T>(pack, wpack, r);
    }
  } else {
    for (int64_t c = threadIdx.x; c < cols; c += kNormThreads)
      out[c] = from_f32<T>(to_f32(w[c]) * round_to<T>(to_f32(row[c]) * r));
  }
}

template <typename T>
__device__ inline float inverse_rms(float squares, int64_t cols, float eps) {
  return rsqrtf(block_sum<float>(squares) / static_cast<float>(cols) + eps);
}

// RoPE in the rotate-half layout as Qwen3RotaryEmbedding computes it: angle = float(position) · inv_freq in f32,
// cos and sin with full range reduction (no fast math: angles reach 4e4 rad at 40k positions) rounded to T
// (cos.to(x.dtype)); x1' = x1·cos − x2·sin and x2' = x2·cos + x1·sin with each product and the sum rounded to T.
// Explicit _rn intrinsics keep nvcc from contracting them into FMAs, which would skip torch's roundings.
struct RopeAngle {
  float cos, sin;
};
template <typename T>
__device__ inline RopeAngle rope_angle(float position, float inv_freq) {
  const float angle = __fmul_rn(position, inv_freq);
  return {round_to<T>(cosf(angle)), round_to<T>(sinf(angle))};
}
// The rotated value of `self`, whose partner at the same frequency in the other half is `other`.
template <typename T>
__device__ inline T rope_rotate(float self, float other, RopeAngle a, bool first_half) {
  return from_f32<T>(__fadd_rn(round_to<T>(__fmul_rn(self, a.cos)),
                               round_to<T>(__fmul_rn(first_half ? -other : other, a.sin))));
}

inline bool norm_aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace embedserve::cuda
