// Causal GQA attention against a naive double-precision reference, per sequence, in query blocks.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "ops/cpu/kernels.h"
#include "op_test_util.h"

namespace embedserve::ops::cpu {
namespace {

using embedserve::testing::poisoned;
using embedserve::testing::random_floats;

// out [heads, hd] of the query q_row at position `pos` over keys 0..pos of the sequence at kv_begin.
std::vector<double> reference_row(const std::vector<float>& q, const std::vector<float>& k,
                                  const std::vector<float>& v, const AttentionShape& sh, int64_t q_row,
                                  int64_t kv_begin, int pos) {
  const int hd = sh.head_dim, group = sh.heads / sh.kv_heads;
  std::vector<double> out(size_t(sh.heads) * hd, 0.0);
  for (int h = 0; h < sh.heads; ++h) {
    const int kvh = h / group;
    std::vector<double> p(pos + 1);
    double max = -1e300;
    for (int j = 0; j <= pos; ++j) {
      double d = 0;
      for (int i = 0; i < hd; ++i)
        d += double(q[(q_row * sh.heads + h) * hd + i]) * k[((kv_begin + j) * sh.kv_heads + kvh) * hd + i];
      p[j] = d * sh.scale;
      max = std::max(max, p[j]);
    }
    double sum = 0;
    for (auto& e : p) sum += (e = std::exp(e - max));
    for (int j = 0; j <= pos; ++j)
      for (int i = 0; i < hd; ++i) out[h * hd + i] += p[j] / sum * v[((kv_begin + j) * sh.kv_heads + kvh) * hd + i];
  }
  return out;
}

struct Case {
  std::vector<int32_t> kv_offsets;
  AttentionShape shape;
};

class Attention : public ::testing::Test {
 protected:
  void SetUp() override { configure_blas(0); }
};

TEST_F(Attention, EveryQueryMatchesReference) {
  // Lengths 1, 5 and 150 (three query blocks of 64, the last partial); GQA 6:2; odd head_dim.
  const AttentionShape sh{6, 2, 13, 1.0f / std::sqrt(13.0f)};
  const std::vector<int32_t> offsets = {0, 1, 6, 156};
  const int64_t n = offsets.back();
  const auto q = random_floats(n * sh.heads * sh.head_dim, 1, 2.0f);
  const auto k = random_floats(n * sh.kv_heads * sh.head_dim, 2, 2.0f);
  const auto v = random_floats(n * sh.kv_heads * sh.head_dim, 3);
  std::vector<int32_t> positions(n);
  for (size_t s = 0; s + 1 < offsets.size(); ++s)
    for (int32_t t = offsets[s]; t < offsets[s + 1]; ++t) positions[t] = t - offsets[s];
  auto out = poisoned(n * sh.heads * sh.head_dim);
  attention(q.data(), k.data(), v.data(), out.data(), sh, offsets, positions, offsets);
  for (size_t s = 0; s + 1 < offsets.size(); ++s)
    for (int32_t t = offsets[s]; t < offsets[s + 1]; ++t) {
      const auto want = reference_row(q, k, v, sh, t, offsets[s], positions[t]);
      for (size_t i = 0; i < want.size(); ++i)
        ASSERT_NEAR(out[size_t(t) * want.size() + i], want[i], 2e-5 * (1 + std::fabs(want[i])))
            << "seq " << s << " token " << t;
    }
}

TEST_F(Attention, QueriesForASubsetOfRowsSeeTheWholePrefix) {
  // The last layer under last-token pooling: one query per sequence (its last position), all keys.
  const AttentionShape sh{4, 1, 8, 0.35f};
  const std::vector<int32_t> kv_offsets = {0, 70, 73};
  const int64_t n = kv_offsets.back();
  const auto k = random_floats(n * sh.kv_heads * sh.head_dim, 4);
  const auto v = random_floats(n * sh.kv_heads * sh.head_dim, 5);
  const auto q = random_floats(2 * sh.heads * sh.head_dim, 6);
  const std::vector<int32_t> q_offsets = {0, 1, 2};
  const std::vector<int32_t> q_positions = {69, 2};
  auto out = poisoned(2 * sh.heads * sh.head_dim);
  attention(q.data(), k.data(), v.data(), out.data(), sh, q_offsets, q_positions, kv_offsets);
  for (int s = 0; s < 2; ++s) {
    const auto want = reference_row(q, k, v, sh, s, kv_offsets[s], q_positions[s]);
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(out[s * want.size() + i], want[i], 2e-5 * (1 + std::fabs(want[i]))) << "seq " << s;
  }
}

TEST_F(Attention, ASequenceGivesTheSameBitsAloneAndBatched) {
  const AttentionShape sh{4, 2, 16, 0.25f};
  const int len = 90, other = 37;
  const auto q = random_floats((other + len) * sh.heads * sh.head_dim, 7);
  const auto k = random_floats((other + len) * sh.kv_heads * sh.head_dim, 8);
  const auto v = random_floats((other + len) * sh.kv_heads * sh.head_dim, 9);
  std::vector<int32_t> positions;
  for (int t = 0; t < other; ++t) positions.push_back(t);
  for (int t = 0; t < len; ++t) positions.push_back(t);
  const std::vector<int32_t> batched = {0, other, other + len};
  auto out_batched = poisoned(q.size());
  attention(q.data(), k.data(), v.data(), out_batched.data(), sh, batched, positions, batched);
  const size_t q_row = size_t(sh.heads) * sh.head_dim, kv_row = size_t(sh.kv_heads) * sh.head_dim;
  const std::vector<int32_t> alone = {0, len};
  auto out_alone = poisoned(len * q_row);
  attention(q.data() + other * q_row, k.data() + other * kv_row, v.data() + other * kv_row, out_alone.data(), sh,
            alone, std::span<const int32_t>(positions).subspan(other), alone);
  EXPECT_EQ(0, std::memcmp(out_alone.data(), out_batched.data() + other * q_row, out_alone.size() * sizeof(float)));
}

}  // namespace
}  // namespace embedserve::ops::cpu
