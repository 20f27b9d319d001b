// bf16/f16 → f32 widening; exact, so converted weights equal what torch computes with after .float().
#include "ops/convert.h"

#include <bit>
#include <cmath>
#include <cstring>

namespace embedserve::ops {

float bf16_to_f32(uint16_t bits) { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t mant = h & 0x3ffu;
  if (exp == 0x1f) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));  // inf / nan
  if (exp != 0) return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
  // Zero or subnormal half: mant · 2^-24, which float32 represents exactly.
  const float magnitude = std::ldexp(static_cast<float>(mant), -24);
  return sign ? -magnitude : magnitude;
}

void convert_to_f32(const void* src, DType dtype, float* dst, size_t n) {
  const auto* bytes = static_cast<const unsigned char*>(src);
  if (dtype == DType::kF32) {
    std::memcpy(dst, src, n * sizeof(float));
    return;
  }
  const bool bf16 = dtype == DType::kBF16;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < static_cast<int64_t>(n); ++i) {
    uint16_t bits;
    std::memcpy(&bits, bytes + 2 * i, 2);  // the mapped data need not be 2-byte aligned
    dst[i] = bf16 ? bf16_to_f32(bits) : f16_to_f32(bits);
  }
}

}  // namespace embedserve::ops
