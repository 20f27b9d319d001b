// apply_rope against a CPU reference with transformers' f32 angles and roundings, positions up to 40k.
#include "ops/cuda/rope_cuda.h"

#include <cuda_bf16.h>

#include <cmath>

#include "device_array.h"

namespace embedserve::cuda {
namespace {

template <typename T>
class RopeCudaTest : public ::testing::Test {};
using Types = ::testing::Types<float, __nv_bfloat16>;
TYPED_TEST_SUITE(RopeCudaTest, Types);

template <typename T>
void check(int heads, int head_dim, float theta, uint32_t seed) {
  const std::vector<int32_t> positions = {0, 1, 2, 7, 511, 4095, 32767, 40959};
  const int64_t n = static_cast<int64_t>(positions.size()), half = head_dim / 2;
  std::vector<float> inv_freq(half);
  for (int64_t i = 0; i < half; ++i)
    inv_freq[i] = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(head_dim));
  const auto x = random_values<T>(n * heads * head_dim, seed);
  DeviceArray<T> dx(x);
  DeviceArray<float> dfreq(inv_freq);
  DeviceInts dpos(positions);
  ASSERT_TRUE(apply_rope(dx.get(), dpos.get(), dfreq.get(), n, heads, head_dim, nullptr).ok());
  const auto got = dx.download();
  for (int64_t r = 0; r < n; ++r)
    for (int h = 0; h < heads; ++h)
      for (int64_t i = 0; i < half; ++i) {
        const float angle = static_cast<float>(positions[r]) * inv_freq[i];  // f32, as torch computes it
        const float c = representable<T>(std::cos(angle)), s = representable<T>(std::sin(angle));
        const size_t base = (r * heads + h) * head_dim;
        const float x1 = x[base + i], x2 = x[base + i + half];
        const float y1 = representable<T>(representable<T>(x1 * c) + representable<T>(-x2 * s));
        const float y2 = representable<T>(representable<T>(x2 * c) + representable<T>(x1 * s));
        // cosf/sinf on the device and in libm agree to an ulp or two of f32, which in T can move a rounding
        // of cos, sin, the products or the sum by one step: four ulps of T on the operands' scale.
        const double tol = 4 * unit_roundoff<T>() * (std::abs(x1) + std::abs(x2)) + 1e-30;
        ASSERT_NEAR(got[base + i], y1, tol) << "pos " << positions[r] << " head " << h << " i " << i;
        ASSERT_NEAR(got[base + i + half], y2, tol) << "pos " << positions[r] << " head " << h << " i " << i;
      }
}

TYPED_TEST(RopeCudaTest, MatchesTransformersAngles) {
  EMBEDSERVE_REQUIRE_GPU();
  check<TypeParam>(3, 128, 1000000.0f, 1);  // Qwen3's head_dim and rope_theta
  check<TypeParam>(5, 6, 10000.0f, 2);      // odd head count, tiny head
}

TEST(RopeCudaShapes, RejectsOddHeadDim) {
  EXPECT_FALSE(apply_rope<float>(nullptr, nullptr, nullptr, 1, 1, 5, nullptr).ok());
}

}  // namespace
}  // namespace embedserve::cuda
