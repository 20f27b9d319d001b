// attention against a float64 CPU reference: GQA and MQA, head sizes 6–200, sequences of 1–1000 tokens,
// every row's queries and the last layer's one pooled query per sequence; in bf16 both kernels (tensor cores
// for head_dim 64/128, CUDA cores otherwise).
#include "ops/cuda/attention_cuda.h"

#include <cuda_bf16.h>

#include <cmath>

#include "device_array.h"

namespace embedserve::cuda {
namespace {

template <typename T>
class AttentionCudaTest : public ::testing::Test {};
using Types = ::testing::Types<float, __nv_bfloat16>;
TYPED_TEST_SUITE(AttentionCudaTest, Types);

// Causal softmax attention in double over the same rows the kernel is given.
std::vector<double> reference(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                              const AttentionShape& s, const std::vector<int32_t>& q_offsets,
                              const std::vector<int32_t>& q_positions, const std::vector<int32_t>& kv_offsets) {
  const int hd = s.head_dim, group = s.heads / s.kv_heads;
  std::vector<double> out(q.size());
  for (size_t seq = 0; seq + 1 < q_offsets.size(); ++seq)
    for (int32_t r = q_offsets[seq]; r < q_offsets[seq + 1]; ++r)
      for (int h = 0; h < s.heads; ++h) {
        const int kvh = h / group, visible = q_positions[r] + 1;
        std::vector<double> p(visible);
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < visible; ++j) {
          double dot = 0;
          for (int d = 0; d < hd; ++d)
            dot += double(q[(size_t(r) * s.heads + h) * hd + d]) *
                   k[(size_t(kv_offsets[seq] + j) * s.kv_heads + kvh) * hd + d];
          p[j] = dot * s.scale;
          mx = std::max(mx, p[j]);
        }
        for (auto& x : p) sum += (x = std::exp(x - mx));
        for (int d = 0; d < hd; ++d) {
          double acc = 0;
          for (int j = 0; j < visible; ++j) acc += p[j] * v[(size_t(kv_offsets[seq] + j) * s.kv_heads + kvh) * hd + d];
          out[(size_t(r) * s.heads + h) * hd + d] = acc / sum;
        }
      }
  return out;
}

template <typename T>
void check(const AttentionShape& shape, const std::vector<int32_t>& lengths, bool pooled, uint32_t seed) {
  std::vector<int32_t> kv_offsets{0}, q_offsets{0}, q_positions;
  for (int32_t len : lengths) {
    kv_offsets.push_back(kv_offsets.back() + len);
    if (pooled) {  // one query per sequence, at its last position (last-token pooling's last layer)
      q_positions.push_back(len - 1);
      q_offsets.push_back(q_offsets.back() + 1);
    } else {
      for (int32_t p = 0; p < len; ++p) q_positions.push_back(p);
      q_offsets.push_back(q_offsets.back() + len);
    }
  }
  const int64_t n_kv = kv_offsets.back(), n_q = q_offsets.back();
  const auto q = random_values<T>(n_q * shape.heads * shape.head_dim, seed, 1.5f);
  const auto k = random_values<T>(n_kv * shape.kv_heads * shape.head_dim, seed + 1, 1.5f);
  const auto v = random_values<T>(n_kv * shape.kv_heads * shape.head_dim, seed + 2);
  std::vector<int32_t> tiles;
  attention_tiles(q_offsets.data(), int64_t(lengths.size()), &tiles);
  ASSERT_LE(int64_t(tiles.size() / 2), max_attention_tiles(n_q, int64_t(lengths.size())));
  DeviceArray<T> dq(q), dk(k), dv(v), dout(q.size());
  DeviceInts dqo(q_offsets), dqp(q_positions), dkvo(kv_offsets), dtiles(tiles);
  Status st = attention(dq.get(), dk.get(), dv.get(), dout.get(), shape, dqo.get(), dqp.get(), dkvo.get(),
                        dtiles.get(), int64_t(tiles.size() / 2), nullptr);
  ASSERT_TRUE(st.ok()) << st.to_string();
  const double err = relative_error(dout.download(), reference(q, k, v, shape, q_offsets, q_positions, kv_offsets));
  // f32: sums of ≤ 1000 terms in float, ~1e-6; bf16: the output is rounded to bf16 once (relative rms
  // ≈ 2^-9 / √3 ≈ 1.1e-3), so half a bf16 unit bounds it with room for the f32 sums.
  const double tol = std::is_same_v<T, float> ? 1e-5 : unit_roundoff<T>() / 2;
  EXPECT_LE(err, tol) << "heads " << shape.heads << "/" << shape.kv_heads << " head_dim " << shape.head_dim
                      << (pooled ? " pooled" : "");
}

TYPED_TEST(AttentionCudaTest, GqaVarlenMatchesReference) {
  EMBEDSERVE_REQUIRE_GPU();
  for (bool pooled : {false, true}) {
    // head_dim 128 and 64: bf16 runs them on tensor cores (attention_mma_cuda.cu), f32 on CUDA cores
    check<TypeParam>({4, 2, 128, 1.0f / std::sqrt(128.0f)}, {1, 33, 70, 5}, pooled, 1);
    check<TypeParam>({6, 3, 64, 0.125f}, {64, 65, 130, 7}, pooled, 19);
    check<TypeParam>({3, 1, 72, 0.11f}, {31, 32, 64, 2}, pooled, 4);   // MQA, head not a multiple of 32
    check<TypeParam>({2, 2, 200, 0.07f}, {45, 1, 9}, pooled, 7);       // MHA, head_dim > 128
    check<TypeParam>({2, 1, 6, 0.4f}, {3, 17}, pooled, 10);            // tiny heads
  }
}

TYPED_TEST(AttentionCudaTest, LongSequenceSpansManyKeyTiles) {
  EMBEDSERVE_REQUIRE_GPU();
  check<TypeParam>({2, 1, 128, 1.0f / std::sqrt(128.0f)}, {1000, 3}, false, 13);
  check<TypeParam>({2, 1, 128, 1.0f / std::sqrt(128.0f)}, {1000, 3}, true, 16);
}

TEST(AttentionCudaShapes, RejectsUnsupportedShapes) {
  EXPECT_FALSE(attention<float>(nullptr, nullptr, nullptr, nullptr, {4, 3, 64, 1.0f}, nullptr, nullptr, nullptr,
                                nullptr, 1, nullptr).ok());  // 4 heads over 3 kv heads
  EXPECT_FALSE(attention<float>(nullptr, nullptr, nullptr, nullptr, {2, 1, 512, 1.0f}, nullptr, nullptr, nullptr,
                                nullptr, 1, nullptr).ok());  // head_dim past 256
}

}  // namespace
}  // namespace embedserve::cuda
