// Rotary position embedding on the GPU (rotate-half layout), angles rounded like transformers'.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/status.h"

namespace embedserve::cuda {

// Rotates x T [n, heads, head_dim] in place. Row r is at positions[r] (int32 [n], device); inv_freq f32
// [head_dim/2] (device). Like Qwen3RotaryEmbedding: angle = float(position) * inv_freq[i] in f32, cos and
// sin of it rounded to T (cos.to(x.dtype)), then x1' = x1·cos − x2·sin, x2' = x2·cos + x1·sin with each
// product and the sum rounded to T (torch's (q * cos) + (rotate_half(q) * sin) in T).
template <typename T>
Status apply_rope(T* x, const int32_t* positions, const float* inv_freq, int64_t n, int heads, int head_dim,
                  cudaStream_t stream);

}  // namespace embedserve::cuda
