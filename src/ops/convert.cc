// bf16/f16 → f32 widening; exact, so converted weights equal what torch computes with after .float().
#include "ops/convert.h"

#include "core/float8.h"

#include <algorithm>
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

void convert_to_f32_serial(const void* src, DType dtype, float* dst, size_t n) {
  if (dtype == DType::kF32) {
    std::memcpy(dst, src, n * sizeof(float));
    return;
  }
  const auto* bytes = static_cast<const unsigned char*>(src);
  if (dtype == DType::kF8E4M3) {  // the codes' values, unscaled (scales belong to the caller)
    const auto& table = fp8::table();
    for (size_t i = 0; i < n; ++i) dst[i] = table[bytes[i]];
    return;
  }
  const bool bf16 = dtype == DType::kBF16;
  for (size_t i = 0; i < n; ++i) {
    uint16_t bits;
    std::memcpy(&bits, bytes + 2 * i, 2);  // the mapped data need not be 2-byte aligned
    dst[i] = bf16 ? bf16_to_f32(bits) : f16_to_f32(bits);
  }
}

void convert_to_f32(const void* src, DType dtype, float* dst, size_t n) {
  if (dtype == DType::kF32) {
    std::memcpy(dst, src, n * sizeof(float));
    return;
  }
  // Blocks of 4,096 elements across OpenMP's threads, each block widened serially.
  constexpr int64_t kBlock = 4096;
  const auto* bytes = static_cast<const unsigned char*>(src);
  const int64_t blocks = (static_cast<int64_t>(n) + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const size_t at = static_cast<size_t>(b * kBlock);
    convert_to_f32_serial(bytes + dtype_size(dtype) * at, dtype, dst + at, std::min<size_t>(kBlock, n - at));
  }
}

}  // namespace embedserve::ops
