// bf16/f16 → f32 widening against the compiler's own _Float16 conversion (all 65536 patterns) and known values.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <vector>

#include "ops/convert.h"

namespace embedserve::ops {
namespace {

TEST(Convert, F16MatchesCompilerConversionForEveryBitPattern) {
  for (uint32_t bits = 0; bits < 65536; ++bits) {
    const uint16_t h = static_cast<uint16_t>(bits);
    _Float16 half;
    std::memcpy(&half, &h, 2);
    const float expected = static_cast<float>(half);
    const float got = f16_to_f32(h);
    if (std::isnan(expected)) {
      EXPECT_TRUE(std::isnan(got)) << "bits " << bits;
    } else {
      ASSERT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(expected)) << "bits " << bits;
    }
  }
}

TEST(Convert, Bf16IsTheTopHalfOfAFloat) {
  EXPECT_EQ(bf16_to_f32(0x3f80), 1.0f);
  EXPECT_EQ(bf16_to_f32(0xc040), -3.0f);
  EXPECT_EQ(bf16_to_f32(0x0000), 0.0f);
  EXPECT_TRUE(std::signbit(bf16_to_f32(0x8000)));
  EXPECT_TRUE(std::isinf(bf16_to_f32(0x7f80)));
  EXPECT_EQ(bf16_to_f32(0x3f81), 1.0f + 1.0f / 128);  // 7 mantissa bits
}

TEST(Convert, ReadsUnalignedBuffersOfEachDtype) {
  // Mapped safetensors data may start at any byte: convert from an odd address.
  const std::vector<float> values = {1.5f, -2.25f, 0.0f, 65504.0f, 1e-3f, -7.0f, 3.0f};
  std::vector<unsigned char> raw(1 + values.size() * 4);
  std::vector<float> out(values.size(), NAN);

  for (size_t i = 0; i < values.size(); ++i) std::memcpy(raw.data() + 1 + 4 * i, &values[i], 4);
  convert_to_f32(raw.data() + 1, DType::kF32, out.data(), out.size());
  EXPECT_EQ(out, values);

  for (size_t i = 0; i < values.size(); ++i) {
    const uint16_t b = static_cast<uint16_t>(std::bit_cast<uint32_t>(values[i]) >> 16);  // exact for these values except 1e-3
    std::memcpy(raw.data() + 1 + 2 * i, &b, 2);
  }
  convert_to_f32(raw.data() + 1, DType::kBF16, out.data(), out.size());
  for (size_t i = 0; i < values.size(); ++i)
    EXPECT_EQ(out[i], std::bit_cast<float>(std::bit_cast<uint32_t>(values[i]) & 0xffff0000u)) << i;

  for (size_t i = 0; i < values.size(); ++i) {
    const _Float16 h = static_cast<_Float16>(values[i]);
    std::memcpy(raw.data() + 1 + 2 * i, &h, 2);
  }
  convert_to_f32(raw.data() + 1, DType::kF16, out.data(), out.size());
  for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(out[i], static_cast<float>(static_cast<_Float16>(values[i]))) << i;
}

}  // namespace
}  // namespace embedserve::ops
