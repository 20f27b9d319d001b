// Host-side helpers of every op test: seeded inputs, bf16 rounding, tolerances and comparisons.
#include "op_test_util.h"

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <sstream>
#include <stdexcept>

namespace embedserve::testing {

void check(const Status& status, const std::string& what) {
  if (!status.ok()) throw std::runtime_error(what + ": " + status.to_string());
}

uint16_t bf16_bits(float f) {
  uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float from_bf16_bits(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

float round_to(DType dtype, float f) { return dtype == DType::kBF16 ? from_bf16_bits(bf16_bits(f)) : f; }

std::vector<float> random_values(DType dtype, size_t n, uint32_t seed, float stddev, float mean) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(mean, stddev);
  std::vector<float> v(n);
  for (float& x : v) x = round_to(dtype, dist(rng));
  return v;
}

std::vector<int32_t> random_ints(size_t n, int32_t bound, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, bound - 1);
  std::vector<int32_t> v(n);
  for (int32_t& x : v) x = dist(rng);
  return v;
}

double unit_roundoff(DType dtype) { return dtype == DType::kBF16 ? 0x1p-8 : 0x1p-24; }

double tolerance(DType dtype, double roundings, double f32_units) {
  return roundings * unit_roundoff(dtype) + f32_units * 0x1p-24;
}

::testing::AssertionResult near(std::span<const float> got, std::span<const double> want, double tolerance) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << got.size() << " elements, the reference has " << want.size();
  double num = 0, den = 0, worst = -1;
  size_t worst_at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(got[i]))
      return ::testing::AssertionFailure() << "element " << i << " of " << got.size()
                                           << " is NaN: unwritten (still poisoned) or computed as NaN; reference "
                                           << want[i];
    const double d = got[i] - want[i];
    num += d * d;
    den += want[i] * want[i];
    if (std::fabs(d) > worst) {
      worst = std::fabs(d);
      worst_at = i;
    }
  }
  const double error = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  std::ostringstream what;
  what << "‖out − ref‖/‖ref‖ = " << error << (error <= tolerance ? " ≤ " : " > ") << "tolerance " << tolerance
       << " over " << got.size() << " elements";
  if (!got.empty()) what << "; worst element " << worst_at << ": got " << got[worst_at] << ", reference " << want[worst_at];
  // EMBEDSERVE_OP_TEST_VERBOSE=1 prints every comparison, passing ones too: how much room each tolerance leaves.
  if (std::getenv("EMBEDSERVE_OP_TEST_VERBOSE")) {
    const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
    std::fprintf(stderr, "%s.%s: %s (%.3g of the tolerance)\n", test ? test->test_suite_name() : "",
                 test ? test->name() : "", what.str().c_str(), error / tolerance);
  }
  return (error <= tolerance ? ::testing::AssertionSuccess() : ::testing::AssertionFailure()) << what.str();
}

::testing::AssertionResult same_bits(std::span<const float> got, std::span<const float> want) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << got.size() << " elements, expected " << want.size();
  for (size_t i = 0; i < got.size(); ++i)
    if (std::bit_cast<uint32_t>(got[i]) != std::bit_cast<uint32_t>(want[i]))
      return ::testing::AssertionFailure() << "element " << i << " of " << got.size() << " differs: got " << got[i]
                                           << ", expected " << want[i] << " (bits " << std::hex
                                           << std::bit_cast<uint32_t>(got[i]) << " vs "
                                           << std::bit_cast<uint32_t>(want[i]) << ")";
  return ::testing::AssertionSuccess() << got.size() << " elements equal bit for bit";
}

::testing::AssertionResult succeeded(const Status& status) {
  if (status.ok()) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << status.to_string();
}

::testing::AssertionResult untouched(std::span<const float> got) {
  for (size_t i = 0; i < got.size(); ++i)
    if (!std::isnan(got[i]))
      return ::testing::AssertionFailure() << "element " << i << " was written (" << got[i]
                                           << "): a kernel ran although the op returned an error";
  return ::testing::AssertionSuccess();
}

}  // namespace embedserve::testing
