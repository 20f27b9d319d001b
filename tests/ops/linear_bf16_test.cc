// Below the op API: every bf16-weight GEMM kernel this CPU runs (cpu::linear_bf16) against a double-precision
// reference at odd sizes, and the property linear() relies on to run one GEMM per batch: a row's bits do not
// depend on m, on the row's place, or on the thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "op_test_util.h"
#include "ops/cpu/kernels.h"

namespace embedserve::ops::cpu {
namespace {

using embedserve::testing::bf16_bits;
using embedserve::testing::near;
using embedserve::testing::random_values;
using embedserve::testing::round_to;
using embedserve::testing::same_bits;
using embedserve::testing::tolerance;

class Bf16Gemm : public ::testing::TestWithParam<Bf16Kernel> {
 protected:
  void SetUp() override {
    if (!bf16_kernel_supported(GetParam())) GTEST_SKIP() << "this CPU lacks " << bf16_kernel_name(GetParam());
    configure_blas(0);
  }
  // The dot-product kernel reads x rounded to bf16; the others read it as is.
  bool rounds_x() const { return GetParam() == Bf16Kernel::kAvx512Bf16; }

  // y [m, n] through the kernel under test; poisoned with NaN first so an element no panel wrote shows.
  std::vector<float> run(const std::vector<float>& x, const std::vector<uint16_t>& w, int64_t m, int64_t n,
                         int64_t k) const {
    std::vector<float> y(size_t(m * n), NAN);
    linear_bf16(GetParam(), x.data(), w.data(), y.data(), m, n, k);
    return y;
  }
};

std::vector<uint16_t> to_bits(const std::vector<float>& values) {
  std::vector<uint16_t> bits(values.size());
  for (size_t i = 0; i < values.size(); ++i) bits[i] = bf16_bits(values[i]);
  return bits;
}

TEST_P(Bf16Gemm, MatchesTheReferenceAtOddSizes) {
  // m across the 4-row tiles and their remainders, n across the 4-column panels, k across the 32-element
  // (AVX512-BF16), 16 (AVX-512) and 8 (AVX2) steps and their masked tails; 600 rows cross a chunk of x.
  struct Case {
    int64_t m, n, k;
  };
  uint32_t seed = 1;
  for (const Case& c : {Case{1, 1, 1}, {1, 5, 7}, {2, 3, 31}, {3, 4, 32}, {5, 9, 33}, {7, 13, 100}, {13, 33, 257},
                        {37, 64, 1040}, {600, 7, 64}}) {
    SCOPED_TRACE(::testing::Message() << "x [" << c.m << ", " << c.k << "] · w [" << c.n << ", " << c.k << "]ᵀ");
    const auto x = random_values(DType::kF32, size_t(c.m * c.k), seed++);
    const auto w = random_values(DType::kBF16, size_t(c.n * c.k), seed++, 1.0f / std::sqrt(float(c.k)));
    const auto y = run(x, to_bits(w), c.m, c.n, c.k);
    std::vector<double> want(size_t(c.m * c.n));
    for (int64_t r = 0; r < c.m; ++r)
      for (int64_t j = 0; j < c.n; ++j) {
        double s = 0;
        for (int64_t i = 0; i < c.k; ++i) {
          const float xi = x[size_t(r * c.k + i)];
          s += double(rounds_x() ? round_to(DType::kBF16, xi) : xi) * w[size_t(j * c.k + i)];
        }
        want[size_t(r * c.n + j)] = s;
      }
    // Against the values the kernel multiplies (x rounded to bf16 where it rounds it), each product rounds at most
    // once in f32 (bf16 × bf16 is exact) and the length-k sum is f32: γ_k = k units of 2^-24, relative to Σ|xᵢwᵢ|
    // (~√k·|Σxᵢwᵢ| on these zero-mean inputs), so k units normwise holds with room.
    EXPECT_TRUE(near(y, want, tolerance(DType::kF32, 0, double(c.k))));
  }
}

TEST_P(Bf16Gemm, RoundingXToBf16IsTheOnlyLossAgainstF32) {
  // The kernel against the exact product of the unrounded f32 x: one bf16 rounding of each x (≤ 2^-8 relative;
  // the errors of a dot product add as a random walk, ~2^-8/√3 normwise) where the kernel rounds x, none where it
  // does not, plus the f32 sum.
  const int64_t m = 9, n = 40, k = 1024;
  const auto x = random_values(DType::kF32, size_t(m * k), 7);
  const auto w = random_values(DType::kBF16, size_t(n * k), 8, 1.0f / 32);
  const auto y = run(x, to_bits(w), m, n, k);
  std::vector<double> want(size_t(m * n));
  for (int64_t r = 0; r < m; ++r)
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t i = 0; i < k; ++i) s += double(x[size_t(r * k + i)]) * w[size_t(j * k + i)];
      want[size_t(r * n + j)] = s;
    }
  EXPECT_TRUE(near(y, want, tolerance(DType::kBF16, rounds_x() ? 1 : 0, double(k))));
}

TEST_P(Bf16Gemm, ARowGetsTheSameBitsAtAnyPlaceInAnyBatchOnAnyThreadCount) {
  // What lets linear() run one GEMM over the whole batch: a sequence's rows alone, then after `before` other
  // rows (every remainder of the 4- and 3-row tiles, and past a chunk of x) and before `after` more.
  const int64_t n = 70, k = 1040, len = 11;  // n: 17 full panels and a remainder of 2; k: masked tails
  const auto w = to_bits(random_values(DType::kBF16, size_t(n * k), 5, 1.0f / 32));
  const auto seq = random_values(DType::kF32, size_t(len * k), 6);
  const auto alone = run(seq, w, len, n, k);
  for (int64_t before : {0, 1, 2, 3, 5, 17, 301})
    for (int64_t after : {0, 3, 40}) {
      const int64_t m = before + len + after;
      auto x = random_values(DType::kF32, size_t(m * k), uint32_t(100 + before + after));
      std::copy(seq.begin(), seq.end(), x.begin() + before * k);
      const auto y = run(x, w, m, n, k);
      EXPECT_TRUE(same_bits(std::span(y).subspan(size_t(before * n), alone.size()), alone))
          << "the sequence at rows " << before << ".." << before + len << " of " << m;
    }
  configure_blas(1);
  const auto one_thread = run(seq, w, len, n, k);
  configure_blas(0);
  EXPECT_TRUE(same_bits(one_thread, alone)) << "1 thread against " << blas_threads();
}

INSTANTIATE_TEST_SUITE_P(Kernels, Bf16Gemm,
                         ::testing::Values(Bf16Kernel::kAvx512Bf16, Bf16Kernel::kAvx512, Bf16Kernel::kAvx2,
                                           Bf16Kernel::kPortable),
                         [](const auto& info) -> std::string {
                           switch (info.param) {
                             case Bf16Kernel::kAvx512Bf16: return "avx512bf16";
                             case Bf16Kernel::kAvx512: return "avx512";
                             case Bf16Kernel::kAvx2: return "avx2";
                             case Bf16Kernel::kPortable: return "portable";
                           }
                           return "unknown";
                         });

}  // namespace
}  // namespace embedserve::ops::cpu
