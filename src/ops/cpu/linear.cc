// nn.Linear without bias on the CPU: OpenBLAS sgemm over all the batch's rows, or per sequence where rounding demands.
#include <cblas.h>

#include "ops/cpu/kernels.h"

namespace embedserve::ops::cpu {

void linear(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k,
            std::span<const int32_t> row_groups) {
  // y [m, n] = x [m, k] · w [n, k]ᵀ: w is nn.Linear's [out, in] as stored, read transposed in place.
  if (row_groups.size() < 2 || blas_rows_independent(n, k)) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n),
                static_cast<int>(k), 1.0f, x, static_cast<int>(k), w, static_cast<int>(k), 0.0f, y,
                static_cast<int>(n));
    return;
  }
  // Kernels that round a row differently with M and its place: each sequence gets its own sgemm, so it sees
  // the same call alone or batched. Long sequences take a multi-threaded call each; short ones run side by
  // side, one single-threaded call per sequence (OpenBLAS's OpenMP build stays single-threaded inside our
  // parallel region), since a multi-threaded sgemm of 32 rows mostly waits. Which path a sequence takes
  // depends on its own length only, so a batch of one sequence takes the same path too. The cost: the weights are re-packed per sequence (short inputs run at
  // ~75% of one batch-wide call).
  constexpr int64_t kLongRows = 64;
  auto run = [&](size_t g) {
    const int64_t begin = row_groups[g];
    const int64_t rows = row_groups[g + 1] - begin;
    if (rows == 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(n),
                static_cast<int>(k), 1.0f, x + begin * k, static_cast<int>(k), w, static_cast<int>(k), 0.0f,
                y + begin * n, static_cast<int>(n));
  };
  const size_t groups = row_groups.size() - 1;
  for (size_t g = 0; g < groups; ++g)
    if (row_groups[g + 1] - row_groups[g] >= kLongRows) run(g);
#pragma omp parallel for schedule(dynamic, 1)
  for (size_t g = 0; g < groups; ++g)
    if (row_groups[g + 1] - row_groups[g] < kLongRows) run(g);
}

}  // namespace embedserve::ops::cpu
