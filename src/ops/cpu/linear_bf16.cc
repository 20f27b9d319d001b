// nn.Linear with bf16 weights on the CPU: y f32 = x f32 · w bf16ᵀ, through the fastest panel this CPU runs
// (chosen by CPUID at run time, never by the binary's compile flags), cache-blocked and OpenMP-parallel over
// output columns.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "ops/cpu/gemm_bf16.h"
#include "ops/cpu/kernels.h"

namespace embedserve::ops::cpu {
namespace {

float widen(uint16_t bits) {
  const uint32_t u = uint32_t{bits} << 16;  // bf16 is the top half of an f32: exact
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Any CPU: the weight widened as it is read, one f32 accumulator per element in k order.
void panel_portable(const void* a, int64_t rows, const uint16_t* w, int64_t cols, int64_t k, float* y, int64_t ldy) {
  const auto* x = static_cast<const float*>(a);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      float acc = 0.0f;
      for (int64_t i = 0; i < k; ++i) acc += x[r * k + i] * widen(w[c * k + i]);
      y[r * ldy + c] = acc;
    }
}

struct PanelChoice {
  gemm_bf16::Panel panel;
  gemm_bf16::Pack pack;  // nullptr: the panel reads x as f32
  int64_t cols;
};

PanelChoice choice(Bf16Kernel kernel) {
  switch (kernel) {
    case Bf16Kernel::kAvx512Bf16:
      return {gemm_bf16::panel_avx512bf16, gemm_bf16::pack_avx512bf16, gemm_bf16::kAvx512Bf16Cols};
    case Bf16Kernel::kAvx512: return {gemm_bf16::panel_avx512, nullptr, gemm_bf16::kAvx512Cols};
    case Bf16Kernel::kAvx2: return {gemm_bf16::panel_avx2, nullptr, gemm_bf16::kAvx2Cols};
    case Bf16Kernel::kPortable: break;
  }
  return {panel_portable, nullptr, 4};
}

// Below this many multiply-adds a parallel region costs more than it saves (see kMinParallelWork).
constexpr int64_t kMinParallelMacs = int64_t{1} << 20;
// x's rows are taken in chunks of about this many bytes (as the panel reads them), so that a chunk stays in
// L2 while every panel of weights passes over it; each panel's weights (4 rows of k) stay in L1 meanwhile.
constexpr int64_t kChunkBytes = int64_t{256} << 10;

}  // namespace

bool bf16_kernel_supported(Bf16Kernel kernel) {
  // __builtin_cpu_supports also checks that the OS saves the vector state (XCR0).
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl");
  switch (kernel) {
    case Bf16Kernel::kAvx512Bf16: return avx512 && __builtin_cpu_supports("avx512bf16");
    case Bf16Kernel::kAvx512: return avx512;
    case Bf16Kernel::kAvx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Bf16Kernel::kPortable: return true;
  }
  return false;
}

Bf16Kernel best_bf16_kernel() {
  static const Bf16Kernel best = [] {
    for (Bf16Kernel k : {Bf16Kernel::kAvx512Bf16, Bf16Kernel::kAvx512, Bf16Kernel::kAvx2})
      if (bf16_kernel_supported(k)) return k;
    return Bf16Kernel::kPortable;
  }();
  return best;
}

const char* bf16_kernel_name(Bf16Kernel kernel) {
  switch (kernel) {
    case Bf16Kernel::kAvx512Bf16: return "AVX512-BF16 dot products (GEMM inputs rounded to bf16, f32 sums)";
    case Bf16Kernel::kAvx512: return "AVX-512 f32 FMAs (bf16 weights widened as read)";
    case Bf16Kernel::kAvx2: return "AVX2 f32 FMAs (bf16 weights widened as read)";
    case Bf16Kernel::kPortable: return "portable f32 (bf16 weights widened as read)";
  }
  return "unknown";
}

void linear_bf16(Bf16Kernel kernel, const float* x, const uint16_t* w, float* y, int64_t m, int64_t n, int64_t k) {
  // y [m, n] = x [m, k] · w [n, k]ᵀ: w is nn.Linear's [out, in] as stored, each output column's weights contiguous.
  if (m <= 0 || n <= 0) return;
  const PanelChoice p = choice(kernel);
  const int64_t panels = (n + p.cols - 1) / p.cols;
  const int64_t a_bytes = p.pack ? 2 : 4;
  const int64_t chunk = std::min(m, std::max<int64_t>(4, kChunkBytes / (std::max<int64_t>(k, 1) * a_bytes) / 4 * 4));
  std::vector<uint16_t> packed(p.pack ? static_cast<size_t>(chunk * k) : 0);
  const bool parallel = m * n * k >= kMinParallelMacs && omp_get_max_threads() > 1;
#pragma omp parallel if (parallel)
  for (int64_t r0 = 0; r0 < m; r0 += chunk) {  // every thread walks the chunks; the work inside is shared
    const int64_t rows = std::min(chunk, m - r0);
    const void* a = x + r0 * k;
    if (p.pack) {
#pragma omp for schedule(static)
      for (int64_t r = 0; r < rows; ++r) p.pack(x + (r0 + r) * k, packed.data() + r * k, k);
      a = packed.data();  // the loop's closing barrier: every row is packed before any panel reads it
    }
#pragma omp for schedule(static)
    for (int64_t i = 0; i < panels; ++i)
      p.panel(a, rows, w + i * p.cols * k, std::min(p.cols, n - i * p.cols), k, y + r0 * n + i * p.cols, n);
    // (closing barrier: the next chunk's packing overwrites `packed` only after every panel read it)
  }
}

}  // namespace embedserve::ops::cpu
