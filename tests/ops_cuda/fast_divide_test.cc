// FastDivide (ops/cuda/fast_divide.h) on the host: its quotients against the / operator.
#include "ops/cuda/fast_divide.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

namespace embedserve::cuda {
namespace {

// Every numerator near a multiple of d (where a quotient off by one would show), the ends of the range, and random
// ones.
void expect_exact(uint32_t d, std::mt19937& rng) {
  const FastDivide divide(d);
  ASSERT_EQ(divide.divisor(), d);
  constexpr uint32_t kMax = 0x7fffffffu;
  std::vector<uint32_t> ns = {0, 1, 2, kMax, kMax - 1, kMax / d * d, kMax / d * d - 1};
  for (uint32_t k = 1; k <= 200; ++k) {
    const uint64_t m = uint64_t{k} * d;
    if (m > kMax) break;
    ns.push_back(static_cast<uint32_t>(m));
    ns.push_back(static_cast<uint32_t>(m - 1));
    if (m + 1 <= kMax) ns.push_back(static_cast<uint32_t>(m + 1));
  }
  std::uniform_int_distribution<uint32_t> any(0, kMax);
  for (int i = 0; i < 2000; ++i) ns.push_back(any(rng));
  for (const uint32_t n : ns) ASSERT_EQ(divide.quotient(n), n / d) << n << " / " << d;
}

TEST(FastDivide, QuotientsAreExactForSmallDivisors) {
  std::mt19937 rng(1);
  for (uint32_t d = 1; d <= 4096; ++d) expect_exact(d, rng);
}

TEST(FastDivide, QuotientsAreExactForTheModelsRowLengthsAndLargeDivisors) {
  std::mt19937 rng(2);
  // Row lengths in 16-byte packs of the Qwen3 sizes' MLPs (3,072, 9,728 and 12,288 bf16), powers of two and their
  // neighbours, the largest divisor, and random ones.
  for (uint32_t d : {384u, 1216u, 1536u, 768u, 2432u, 3072u, 0x7fffffffu, 0x40000000u, 0x3fffffffu, 0x40000001u})
    expect_exact(d, rng);
  for (int s = 12; s <= 30; ++s)
    for (uint32_t d : {(1u << s) - 1, 1u << s, (1u << s) + 1}) expect_exact(d, rng);
  std::uniform_int_distribution<uint32_t> any(1, 0x7fffffffu);
  for (int i = 0; i < 500; ++i) expect_exact(any(rng), rng);
}

TEST(FastDivide, EveryNumeratorUpToAMillionForAFewDivisors) {
  for (uint32_t d : {3u, 7u, 384u, 1000u, 1216u}) {
    const FastDivide divide(d);
    for (uint32_t n = 0; n < 1000000; ++n) ASSERT_EQ(divide.quotient(n), n / d) << n << " / " << d;
  }
}

}  // namespace
}  // namespace embedserve::cuda
