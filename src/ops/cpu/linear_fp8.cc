// linear_fp8: the CPU's FP8 GEMM, the same arithmetic as the GPU's (activations quantised per row to e4m3, exact
// products of codes, f32 sums, both scales applied after), as the reference and as CI's way to run fp8 mode.
#include <algorithm>
#include <vector>

#include "core/float8.h"
#include "ops/cpu/kernels.h"

namespace embedserve::ops::cpu {
namespace {

constexpr int64_t kRowBlock = 32;  // rows of x widened at once (32 × k floats: ≤ 1.6 MB at k = 12,288)
constexpr int64_t kPanel = 8;      // weight rows widened per task, reused by every row of the block
constexpr int kLanes = 16;

// Σ a[i]·b[i] with lane j summing i ≡ j (mod 16) in i order, then a fixed tree: the order depends on n alone, so
// an element's bits never depend on the batch. Products of two e4m3 values are exact in f32.
__attribute__((target_clones("avx512f", "avx2", "default"))) float dot(const float* a, const float* b, int64_t n) {
  float lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) lanes[j] += a[i + j] * b[i + j];
  for (int j = 0; i < n; ++i, ++j) lanes[j] += a[i] * b[i];
  for (int width = kLanes / 2; width > 0; width /= 2)
    for (int j = 0; j < width; ++j) lanes[j] += lanes[j + width];
  return lanes[0];
}

}  // namespace

void quantize_rows_e4m3(const float* x, int64_t m, int64_t k, uint8_t* xq, float* x_scales) {
  // Per token: scale = max|x| / 448, codes = e4m3(x / scale), exactly as the CUDA kernel quantises.
#pragma omp parallel for schedule(static) if (m * k >= kMinParallelWork)
  for (int64_t i = 0; i < m; ++i) x_scales[i] = fp8::quantize_row(x + i * k, k, xq + i * k);
}

void linear_fp8(const uint8_t* xq, const float* x_scales, const uint8_t* w, const float* w_scales, float* y, int64_t m,
                int64_t n, int64_t k) {
  const auto& table = fp8::table();

  std::vector<float> rows(static_cast<size_t>(std::min(m, kRowBlock) * k));
  const int64_t panels = (n + kPanel - 1) / kPanel;
  for (int64_t i0 = 0; i0 < m; i0 += kRowBlock) {
    const int64_t mb = std::min(kRowBlock, m - i0);
    for (int64_t t = 0; t < mb * k; ++t) rows[static_cast<size_t>(t)] = table[xq[i0 * k + t]];
#pragma omp parallel if (mb * n * k >= kMinParallelWork)
    {
      std::vector<float> panel(static_cast<size_t>(kPanel * k));
#pragma omp for schedule(static)
      for (int64_t p = 0; p < panels; ++p) {
        const int64_t j0 = p * kPanel, nb = std::min(kPanel, n - j0);
        for (int64_t t = 0; t < nb * k; ++t) panel[static_cast<size_t>(t)] = table[w[j0 * k + t]];
        for (int64_t i = 0; i < mb; ++i)
          for (int64_t j = 0; j < nb; ++j)
            y[(i0 + i) * n + j0 + j] =
                dot(rows.data() + i * k, panel.data() + j * k, k) * x_scales[i0 + i] * w_scales[j0 + j];
      }
    }
  }
}

}  // namespace embedserve::ops::cpu
