// Row-wise elementwise kernels: SwiGLU's silu(gate) * up, residual add, row gather.
#include <algorithm>
#include <cstring>

#include "ops/cpu/exp_f32.h"
#include "ops/cpu/kernels.h"

namespace embedserve::ops::cpu {
namespace {

__attribute__((target_clones("avx512f", "avx2", "default"))) void silu_mul_row(const float* g, const float* u,
                                                                                 float* o, int64_t d) {
  // silu(x) = x / (1 + e^-x) in f32, as torch computes it; exp_f32 vectorises where std::exp would not.
  for (int64_t i = 0; i < d; ++i) o[i] = g[i] / (1.0f + exp_f32(-g[i])) * u[i];
}

__attribute__((target_clones("avx512f", "avx2", "default"))) void add_span(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace

void silu_mul(const float* gate, const float* up, int64_t in_stride, float* out, int64_t n, int64_t d) {
#pragma omp parallel for schedule(static) if (n * d >= kMinParallelWork)
  for (int64_t r = 0; r < n; ++r) silu_mul_row(gate + r * in_stride, up + r * in_stride, out + r * d, d);
}

void add(float* x, const float* y, int64_t n) {
  constexpr int64_t kChunk = 1 << 14;  // 64 KB per task: big enough to amortise, small enough to balance
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n >= kMinParallelWork)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t begin = c * kChunk;
    add_span(x + begin, y + begin, std::min(kChunk, n - begin));
  }
}

void gather_rows(const float* x, int64_t dim, std::span<const int32_t> rows, float* out) {
  for (size_t r = 0; r < rows.size(); ++r) {
    float* dst = out + static_cast<int64_t>(r) * dim;
    const float* src = x + static_cast<int64_t>(rows[r]) * dim;
    if (dst != src) std::memmove(dst, src, dim * sizeof(float));  // in place when rows ascend, rows[r] ≥ r
  }
}

}  // namespace embedserve::ops::cpu
