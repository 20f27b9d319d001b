// RoPE tables and rotation against the formulas of transformers' Qwen3RotaryEmbedding / rotate_half.
#include <gtest/gtest.h>

#include <cmath>

#include "ops/cpu/kernels.h"
#include "op_test_util.h"

namespace embedserve::ops::cpu {
namespace {

using embedserve::testing::poisoned;
using embedserve::testing::random_floats;

std::vector<float> inv_freq(int head_dim, float theta) {
  std::vector<float> f(head_dim / 2);
  for (int i = 0; i < head_dim / 2; ++i) f[i] = 1.0f / std::pow(theta, float(2 * i) / float(head_dim));
  return f;
}

TEST(Rope, TablesUseTheFloat32AngleLikeTransformers) {
  const auto freq = inv_freq(18, 1e6f);
  const std::vector<int32_t> pos = {0, 1, 7, 2999, 32767};
  const size_t half = freq.size();
  auto c = poisoned(pos.size() * half), s = poisoned(pos.size() * half);
  rope_tables(pos, freq, c.data(), s.data());
  for (size_t t = 0; t < pos.size(); ++t)
    for (size_t i = 0; i < half; ++i) {
      const float angle = float(pos[t]) * freq[i];  // rounded to f32 before cos/sin, as torch does
      EXPECT_EQ(c[t * half + i], float(std::cos(double(angle))));
      EXPECT_EQ(s[t * half + i], float(std::sin(double(angle))));
    }
  for (size_t i = 0; i < half; ++i) {  // position 0 is the identity rotation
    EXPECT_EQ(c[i], 1.0f);
    EXPECT_EQ(s[i], 0.0f);
  }
}

TEST(Rope, RotatesEachHeadByHalvesInStridedRows) {
  const int n = 5, heads = 3, hd = 14, half = hd / 2;
  const int64_t stride = heads * hd + 6;  // other data between rows stays untouched
  const auto freq = inv_freq(hd, 10000.0f);
  const std::vector<int32_t> pos = {0, 3, 4, 100, 2048};
  std::vector<float> c(n * half), s(n * half);
  rope_tables(pos, freq, c.data(), s.data());
  const auto x0 = random_floats(n * stride, 9);
  auto x = x0;
  apply_rope(x.data(), c.data(), s.data(), n, heads, hd, stride);
  for (int t = 0; t < n; ++t) {
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < half; ++i) {
        const float a = x0[t * stride + h * hd + i], b = x0[t * stride + h * hd + half + i];
        const double ct = c[t * half + i], st = s[t * half + i];
        EXPECT_NEAR(x[t * stride + h * hd + i], a * ct - b * st, 2e-7 * (std::fabs(a) + std::fabs(b)));
        EXPECT_NEAR(x[t * stride + h * hd + half + i], b * ct + a * st, 2e-7 * (std::fabs(a) + std::fabs(b)));
      }
    for (int64_t i = heads * hd; i < stride; ++i) EXPECT_EQ(x[t * stride + i], x0[t * stride + i]);
  }
}

}  // namespace
}  // namespace embedserve::ops::cpu
