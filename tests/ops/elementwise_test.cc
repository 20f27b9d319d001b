// SiLU·up, residual add, row gather, embedding lookup, softmax and exp_f32 against plain references.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>

#include "ops/cpu/exp_f32.h"
#include "ops/cpu/kernels.h"
#include "op_test_util.h"

namespace embedserve::ops::cpu {
namespace {

using embedserve::testing::poisoned;
using embedserve::testing::random_floats;

TEST(ExpF32, WithinThreeUlpOverTheRangeUsed) {
  double worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.0137f) {
    const double want = std::exp(double(x));
    worst = std::max(worst, std::fabs(exp_f32(x) - want) / want);
  }
  EXPECT_LT(worst, 3 * 0x1p-24 * 2);  // 3 ulp (an ulp is 2^-23 relative at worst)
  EXPECT_EQ(exp_f32(0.0f), 1.0f);
  EXPECT_GE(exp_f32(-1000.0f), 0.0f);
  EXPECT_LT(exp_f32(-1000.0f), 1e-37f);
  EXPECT_TRUE(std::isfinite(exp_f32(1000.0f)));
}

TEST(Softmax, MatchesReferenceForShortLongAndSpreadRows) {
  for (auto [n, scale] : {std::pair{1, 1.0f}, {7, 1.0f}, {1000, 5.0f}, {5003, 30.0f}}) {
    auto x = random_floats(n, n, scale);
    const auto x0 = x;
    softmax(x.data(), n);
    // x − max is rounded to f32 in the kernel, as in torch's f32 softmax; that rounding (up to 1e-6
    // relative in e^(x−max) for spread rows) is the computation's, not an error of the kernel: the
    // reference starts from the same rounded differences.
    float max = x0[0];
    for (float v : x0) max = std::max(max, v);
    double sum = 0;
    for (float v : x0) sum += std::exp(double(v - max));
    for (int i = 0; i < n; ++i) {
      const double want = std::exp(double(x0[i] - max)) / sum;
      ASSERT_NEAR(x[i], want, 8 * 0x1p-24 * want + 1e-37) << "n " << n << " i " << i;
    }
  }
}

TEST(SiluMul, MatchesReference) {
  const int64_t n = 3, d = 77;
  auto g = random_floats(n * d, 1, 4.0f);
  g[0] = -100.0f;  // e^100 overflows float: silu must still be ~0, not NaN
  g[1] = 100.0f;
  const auto u = random_floats(n * d, 2);
  auto out = poisoned(n * d);
  silu_mul(g.data(), u.data(), d, out.data(), n, d);
  for (int64_t i = 0; i < n * d; ++i) {
    const double want = g[i] / (1.0 + std::exp(-double(g[i]))) * u[i];
    ASSERT_NEAR(out[i], want, 6 * 0x1p-24 * std::fabs(want) + 1e-30) << i;
  }
  // In place (out == gate), as the model calls it.
  silu_mul(g.data(), u.data(), d, g.data(), n, d);
  EXPECT_EQ(g, out);
}

TEST(Add, AddsEveryElementAcrossChunks) {
  const int64_t n = (1 << 14) * 2 + 5;  // crosses the kernel's chunking with a tail
  auto x = random_floats(n, 3);
  const auto y = random_floats(n, 4);
  const auto x0 = x;
  add(x.data(), y.data(), n);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(x[i], x0[i] + y[i]);
}

TEST(GatherRows, CopiesRowsAndWorksInPlace) {
  const int64_t dim = 5;
  auto x = random_floats(8 * dim, 5);
  const auto x0 = x;
  const std::vector<int32_t> rows = {0, 3, 4, 7};
  auto out = poisoned(rows.size() * dim);
  gather_rows(x.data(), dim, rows, out.data());
  gather_rows(x.data(), dim, rows, x.data());
  for (size_t r = 0; r < rows.size(); ++r)
    for (int64_t i = 0; i < dim; ++i) {
      EXPECT_EQ(out[r * dim + i], x0[rows[r] * dim + i]);
      EXPECT_EQ(x[r * dim + i], x0[rows[r] * dim + i]);
    }
}

TEST(Embedding, LooksUpRowsOfAnUnalignedBf16Table) {
  const int64_t vocab = 11, dim = 6;
  const auto values = random_floats(vocab * dim, 6);
  std::vector<unsigned char> raw(1 + vocab * dim * 2);
  for (int64_t i = 0; i < vocab * dim; ++i) {
    const uint16_t b = static_cast<uint16_t>(std::bit_cast<uint32_t>(values[i]) >> 16);
    std::memcpy(raw.data() + 1 + 2 * i, &b, 2);
  }
  const std::vector<int32_t> ids = {10, 0, 3, 3};
  auto out = poisoned(ids.size() * dim);
  embedding(raw.data() + 1, DType::kBF16, dim, ids, out.data());
  for (size_t t = 0; t < ids.size(); ++t)
    for (int64_t i = 0; i < dim; ++i)
      EXPECT_EQ(out[t * dim + i], std::bit_cast<float>(std::bit_cast<uint32_t>(values[ids[t] * dim + i]) & 0xffff0000u));
}

}  // namespace
}  // namespace embedserve::ops::cpu
