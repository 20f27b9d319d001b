// Linear (sgemm) against a double reference, and the batch invariance the engine relies on.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "ops/cpu/kernels.h"
#include "op_test_util.h"

namespace embedserve::ops::cpu {
namespace {

using embedserve::testing::dot_tolerance;
using embedserve::testing::poisoned;
using embedserve::testing::random_floats;

class Linear : public ::testing::Test {
 protected:
  void SetUp() override { configure_blas(0); }
};

TEST_F(Linear, MatchesReferenceOnOddSizes) {
  for (auto [m, n, k] : {std::tuple{1, 1, 1}, {13, 29, 67}, {70, 33, 130}, {3, 257, 31}}) {
    const auto x = random_floats(size_t(m) * k, 10 + m);
    const auto w = random_floats(size_t(n) * k, 20 + n);
    auto y = poisoned(size_t(m) * n);
    const std::vector<int32_t> groups = {0, m};
    linear(x.data(), w.data(), y.data(), m, n, k, groups);
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        double want = 0, abs_sum = 0;
        for (int t = 0; t < k; ++t) {
          want += double(x[i * k + t]) * w[j * k + t];
          abs_sum += std::fabs(double(x[i * k + t]) * w[j * k + t]);
        }
        ASSERT_NEAR(y[size_t(i) * n + j], want, dot_tolerance(k, abs_sum)) << m << "x" << n << "x" << k;
      }
  }
}

// A sequence's rows must come out bitwise the same whatever else shares the GEMM: computed alone,
// and inside batches of other sizes at other offsets.
// Both paths of linear(): a small product (per-sequence GEMMs on every machine) and one past OpenBLAS's
// small-matrix limit (one batch-wide GEMM where the kernels allow it).
class LinearInvariance : public Linear, public ::testing::WithParamInterface<std::pair<int, int>> {};

TEST_P(LinearInvariance, RowsOfAGroupDoNotDependOnTheBatch) {
  const auto [n, k] = GetParam();
  const auto w = random_floats(size_t(n) * k, 5);
  const int seq_len = 11;
  const auto seq = random_floats(size_t(seq_len) * k, 6);
  auto alone = poisoned(size_t(seq_len) * n);
  linear(seq.data(), w.data(), alone.data(), seq_len, n, k, std::vector<int32_t>{0, seq_len});
  for (int before : {0, 1, 5, 17, 64, 301}) {
    for (int after : {0, 3, 40}) {
      const int m = before + seq_len + after;
      auto x = random_floats(size_t(m) * k, 100 + before + after);
      std::memcpy(x.data() + size_t(before) * k, seq.data(), seq.size() * sizeof(float));
      std::vector<int32_t> groups = {0};
      if (before) groups.push_back(before);
      groups.push_back(before + seq_len);
      if (after) groups.push_back(m);
      auto y = poisoned(size_t(m) * n);
      linear(x.data(), w.data(), y.data(), m, n, k, groups);
      ASSERT_EQ(0, std::memcmp(y.data() + size_t(before) * n, alone.data(), alone.size() * sizeof(float)))
          << "before " << before << " after " << after << " (BLAS core " << blas_core_name() << ")";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(SmallAndLarge, LinearInvariance, ::testing::Values(std::pair{96, 160}, std::pair{1024, 1040}));

}  // namespace
}  // namespace embedserve::ops::cpu
