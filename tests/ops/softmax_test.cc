// Below the op API: the CPU's exp_f32 and softmax, whose accuracy the op suite's tolerances for swiglu and attention
// count on (exp within 3 ulp), checked here against libm in double where the suite sees them only through an op.
#include <gtest/gtest.h>

#include <cmath>

#include "op_test_util.h"
#include "ops/cpu/exp_f32.h"
#include "ops/cpu/kernels.h"

namespace embedserve::ops::cpu {
namespace {

using embedserve::testing::random_values;

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
    auto x = random_values(DType::kF32, n, n, scale);
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

}  // namespace
}  // namespace embedserve::ops::cpu
