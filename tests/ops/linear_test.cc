// Below the op API: whether cpu::blas_rows_independent tells the truth. Where it says OpenBLAS's kernels give a row
// of C the same bits whatever M and the row's place, linear() trusts one batch-wide sgemm instead of one per
// sequence; so one sgemm over a whole batch (a single row group) must give a sequence's rows the bits it gets alone.
// The op suite checks linear() itself, row groups and all, on every backend.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "op_test_util.h"
#include "ops/cpu/kernels.h"

namespace embedserve::ops::cpu {
namespace {

using embedserve::testing::random_values;
using embedserve::testing::same_bits;

// A small product (OpenBLAS's small-matrix path, never claimed) and one past its limit (n·k > 100³, claimed on
// the AVX-512 SkylakeX kernels).
class BlasRows : public ::testing::TestWithParam<std::pair<int, int>> {
 protected:
  void SetUp() override { configure_blas(0); }
};

TEST_P(BlasRows, AreIndependentOfTheBatchWhereClaimed) {
  const auto [n, k] = GetParam();
  if (!blas_rows_independent(n, k))
    GTEST_SKIP() << "OpenBLAS core " << blas_core_name() << " claims no row independence at n " << n << ", k " << k
                 << ": linear() runs one sgemm per sequence there";
  const auto w = random_values(DType::kF32, size_t(n) * k, 5);
  const int seq_len = 11;
  const auto seq = random_values(DType::kF32, size_t(seq_len) * k, 6);
  std::vector<float> alone(size_t(seq_len) * n);
  linear(seq.data(), w.data(), alone.data(), seq_len, n, k, std::vector<int32_t>{0, seq_len});
  for (int before : {0, 1, 5, 17, 64, 301})
    for (int after : {0, 3, 40}) {
      const int m = before + seq_len + after;
      auto x = random_values(DType::kF32, size_t(m) * k, 100 + before + after);
      std::copy(seq.begin(), seq.end(), x.begin() + size_t(before) * k);
      std::vector<float> y(size_t(m) * n);
      linear(x.data(), w.data(), y.data(), m, n, k, std::vector<int32_t>{0, m});  // one sgemm over every row
      EXPECT_TRUE(same_bits(std::span(y).subspan(size_t(before) * n, alone.size()), alone))
          << "before " << before << " after " << after << " (BLAS core " << blas_core_name() << ")";
    }
}

INSTANTIATE_TEST_SUITE_P(SmallAndLarge, BlasRows, ::testing::Values(std::pair{96, 160}, std::pair{1024, 1040}));

}  // namespace
}  // namespace embedserve::ops::cpu
