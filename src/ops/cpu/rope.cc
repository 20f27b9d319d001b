// Rotary position embedding as transformers' Qwen3RotaryEmbedding + apply_rotary_pos_emb compute it.
#include <cmath>

#include "ops/cpu/kernels.h"

namespace embedserve::ops::cpu {

void rope_tables(std::span<const int32_t> positions, std::span<const float> inv_freq, float* cos, float* sin) {
  const int64_t half = static_cast<int64_t>(inv_freq.size());
#pragma omp parallel for schedule(static) if (static_cast<int64_t>(positions.size()) * half >= kMinParallelWork)
  for (int64_t t = 0; t < static_cast<int64_t>(positions.size()); ++t) {
    for (int64_t i = 0; i < half; ++i) {
      // transformers: freqs = position_ids.float() @ inv_freq.float(), a float32 product. At position 3000
      // that angle is off the exact one by up to 1.2e-4 rad; we keep the same rounded angle (not a more
      // exact double one) so long inputs rotate exactly like the reference, then take cos/sin of it
      // correctly rounded (torch's are within 1 ulp of these).
      const float angle = static_cast<float>(positions[t]) * inv_freq[i];
      cos[t * half + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      sin[t * half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
}

namespace {

__attribute__((target_clones("avx512f", "avx2", "default"))) void rope_head(float* x, const float* c, const float* s,
                                                                              int64_t half) {
  float* x1 = x;
  float* x2 = x + half;
  for (int64_t i = 0; i < half; ++i) {
    const float a = x1[i];
    const float b = x2[i];
    x1[i] = a * c[i] + (-b) * s[i];  // q * cos + rotate_half(q) * sin, rotate_half(q) = cat(-q2, q1)
    x2[i] = b * c[i] + a * s[i];
  }
}

}  // namespace

void apply_rope(float* x, const float* cos, const float* sin, int64_t n, int heads, int head_dim, int64_t stride) {
  const int64_t half = head_dim / 2;
#pragma omp parallel for schedule(static) if (n * heads * head_dim >= kMinParallelWork)
  for (int64_t t = 0; t < n; ++t)
    for (int h = 0; h < heads; ++h) rope_head(x + t * stride + h * head_dim, cos + t * half, sin + t * half, half);
}

}  // namespace embedserve::ops::cpu
