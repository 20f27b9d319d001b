// RMSNorm kernel against a double-precision reference, with strided rows and in place.
#include <gtest/gtest.h>

#include <cmath>

#include "ops/cpu/kernels.h"
#include "op_test_util.h"

namespace embedserve::ops::cpu {
namespace {

using embedserve::testing::poisoned;
using embedserve::testing::random_floats;

void expect_rms_norm(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& y,
                     int64_t rows, int64_t dim, int64_t stride, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += double(x[r * stride + i]) * x[r * stride + i];
    const double inv = 1.0 / std::sqrt(ss / dim + eps);
    for (int64_t i = 0; i < dim; ++i) {
      const double want = x[r * stride + i] * inv * w[i];
      // a handful of f32 roundings on the way: 4 ulp
      ASSERT_NEAR(y[r * stride + i], want, 4 * 0x1p-24 * std::fabs(want) + 1e-30) << "row " << r << " col " << i;
    }
  }
}

TEST(RmsNorm, MatchesReferenceOnStridedRows) {
  const int64_t rows = 7, dim = 37, stride = 41;
  const auto x = random_floats(rows * stride, 1, 3.0f);
  const auto w = random_floats(dim, 2);
  auto y = poisoned(rows * stride);
  rms_norm(x.data(), w.data(), y.data(), rows, dim, stride, 1e-6f);
  expect_rms_norm(x, w, y, rows, dim, stride, 1e-6f);
  // The gap between rows belongs to someone else (other heads): untouched, still NaN.
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = dim; i < stride; ++i) EXPECT_TRUE(std::isnan(y[r * stride + i]));
}

TEST(RmsNorm, InPlaceEqualsOutOfPlace) {
  const int64_t rows = 5, dim = 129;
  auto x = random_floats(rows * dim, 3);
  const auto w = random_floats(dim, 4);
  auto y = poisoned(rows * dim);
  rms_norm(x.data(), w.data(), y.data(), rows, dim, dim, 1e-5f);
  rms_norm(x.data(), w.data(), x.data(), rows, dim, dim, 1e-5f);
  EXPECT_EQ(x, y);
}

TEST(RmsNorm, EpsilonKeepsAZeroRowFinite) {
  const std::vector<float> x(16, 0.0f), w(16, 1.0f);
  auto y = poisoned(16);
  rms_norm(x.data(), w.data(), y.data(), 1, 16, 16, 1e-6f);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

}  // namespace
}  // namespace embedserve::ops::cpu
