// Qwen3RMSNorm on the CPU: y = x * rsqrt(mean(x²) + eps) * w, one row per token or per head.
#include <cmath>

#include "ops/cpu/kernels.h"

namespace embedserve::ops::cpu {
namespace {

// target_clones: the scaling loop vectorises to the widest unit the CPU has, chosen at run time
// (CI machines may lack AVX-512); the sum of squares is in double, in order, so every clone agrees on it.
__attribute__((target_clones("avx512f", "avx2", "default"))) void rms_norm_row(const float* x, const float* w,
                                                                                 float* y, int64_t dim, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < dim; ++i) sum += static_cast<double>(x[i]) * x[i];
  // transformers: variance in f32, then rsqrt(variance + eps) in f32; ours is that value correctly rounded.
  const float variance = static_cast<float>(sum / static_cast<double>(dim));
  const float inv = static_cast<float>(1.0 / std::sqrt(static_cast<double>(variance + eps)));
  for (int64_t i = 0; i < dim; ++i) y[i] = w[i] * (x[i] * inv);
}

}  // namespace

void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, int64_t stride, float eps) {
#pragma omp parallel for schedule(static) if (rows * dim >= kMinParallelWork)
  for (int64_t r = 0; r < rows; ++r) rms_norm_row(x + r * stride, w, y + r * stride, dim, eps);
}

}  // namespace embedserve::ops::cpu
