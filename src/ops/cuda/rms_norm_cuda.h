// RMSNorm on the GPU for bf16 activations: the first op of the CUDA backend (layer norms, q_norm, k_norm).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/status.h"

namespace embedserve::cuda {

// out[r, :] = weight * bf16(x[r, :] * rsqrt(mean(x[r, :]²) + eps)), with the sum of squares in f32 —
// the rounding order of transformers' Qwen3RMSNorm under bf16 (normalise in f32, cast to bf16, then
// multiply by the bf16 weight), so vectors match the reference to the last bit where rsqrt allows.
// x, out: bf16 [rows, cols] row-major on the device (may alias); weight: bf16 [cols].
Status rms_norm_bf16(const __nv_bfloat16* x, const __nv_bfloat16* weight, __nv_bfloat16* out, int64_t rows,
                     int64_t cols, float eps, cudaStream_t stream);

// The same in f32 (the parity mode): out = weight * (x * rsqrt(mean(x²) + eps)), f32 throughout.
Status rms_norm_f32(const float* x, const float* weight, float* out, int64_t rows, int64_t cols, float eps,
                    cudaStream_t stream);

// One name for both, so templated callers pick by element type.
inline Status rms_norm(const __nv_bfloat16* x, const __nv_bfloat16* w, __nv_bfloat16* out, int64_t rows,
                       int64_t cols, float eps, cudaStream_t stream) {
  return rms_norm_bf16(x, w, out, rows, cols, eps, stream);
}
inline Status rms_norm(const float* x, const float* w, float* out, int64_t rows, int64_t cols, float eps,
                       cudaStream_t stream) {
  return rms_norm_f32(x, w, out, rows, cols, eps, stream);
}

}  // namespace embedserve::cuda
