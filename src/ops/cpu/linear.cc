// nn.Linear without bias on the CPU: one OpenBLAS sgemm over all the batch's rows.
#include <cblas.h>

#include "ops/cpu/kernels.h"

namespace embedserve::ops::cpu {

void linear(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k,
            std::span<const int32_t> row_groups) {
  // y [m, n] = x [m, k] · w [n, k]ᵀ: w is nn.Linear's [out, in] as stored, read transposed in place.
  if (blas_rows_independent() || row_groups.size() < 2) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(n),
                static_cast<int>(k), 1.0f, x, static_cast<int>(k), w, static_cast<int>(k), 0.0f, y,
                static_cast<int>(n));
    return;
  }
  // Kernels that round a row differently with M: one sgemm per sequence, so each sequence sees the same
  // call alone or batched. Costs some speed on short inputs (M = 32 runs at ~75% of M = 4096).
  for (size_t g = 0; g + 1 < row_groups.size(); ++g) {
    const int64_t begin = row_groups[g];
    const int64_t rows = row_groups[g + 1] - begin;
    if (rows == 0) continue;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(rows), static_cast<int>(n),
                static_cast<int>(k), 1.0f, x + begin * k, static_cast<int>(k), w, static_cast<int>(k), 0.0f,
                y + begin * n, static_cast<int>(n));
  }
}

}  // namespace embedserve::ops::cpu
