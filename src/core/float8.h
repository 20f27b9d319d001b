// FP8 e4m3 (OCP e4m3fn) on the host: rounding f32 to it, widening it back, and the per-row scale rule shared by
// weight quantisation at load and the CPU's per-token activation quantisation.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace embedserve::fp8 {

// The largest finite e4m3 value; a row is scaled so that its largest magnitude lands here.
constexpr float kE4M3Max = 448.0f;

// f32 → e4m3, round to nearest even, saturating to ±448 (what CUDA's __nv_cvt_float_to_fp8(x, __NV_SATFINITE,
// __NV_E4M3) does, so the CPU reference quantises as the GPU kernels do); NaN → 0x7f. Branch-free but for NaN, so
// loops over rows vectorise (a 4B's weights are quantised at load through it): normal values round their f32
// mantissa to 3 bits by integer carry (into the exponent when it overflows), values below 2^-6 are multiples of
// 2^-9 rounded by the float add of 2^23. Checked against a direct implementation on every f32 bit pattern.
inline uint8_t from_float(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
  const uint32_t abits = bits & 0x7fffffffu;
  if (abits > 0x7f800000u) return 0x7f;
  float a;
  std::memcpy(&a, &abits, 4);
  a = std::fmin(a, kE4M3Max);  // saturate (infinity too)
  uint32_t ab;
  std::memcpy(&ab, &a, 4);
  const uint32_t normal = ((ab + 0x7ffffu + ((ab >> 20) & 1u)) >> 20) - (120u << 3);  // exponent bias 127 → 7
  const uint32_t subnormal = static_cast<uint32_t>((a * 512.0f + 8388608.0f) - 8388608.0f);
  return sign | static_cast<uint8_t>(a < 0.015625f ? subnormal : normal);
}

// e4m3 → f32, exactly (every e4m3 value is an f32, and a bf16).
inline float to_float(uint8_t code) {
  const int exponent = (code >> 3) & 0xf, mantissa = code & 7;
  float v;
  if ((code & 0x7f) == 0x7f) v = NAN;
  else if (exponent == 0) v = std::ldexp(static_cast<float>(mantissa), -9);
  else v = std::ldexp(1.0f + static_cast<float>(mantissa) / 8.0f, exponent - 7);
  return (code & 0x80) ? -v : v;
}

// All 256 codes widened, for kernels that widen as they read.
inline const std::array<float, 256>& table() {
  static const std::array<float, 256> t = [] {
    std::array<float, 256> r{};
    for (int c = 0; c < 256; ++c) r[static_cast<size_t>(c)] = to_float(static_cast<uint8_t>(c));
    return r;
  }();
  return t;
}

// The scale of a row whose largest magnitude is `amax`: values are stored as e4m3(x / scale). An all-zero row
// gets scale 1 (its codes are 0 whatever the scale).
inline float row_scale(float amax) { return amax > 0.0f ? amax / kE4M3Max : 1.0f; }

// Quantises one row of n f32 values: q[i] = e4m3(x[i] / scale), scale = row_scale(max |x|). Returns the scale.
inline float quantize_row(const float* x, int64_t n, uint8_t* q) {
  float amax = 0.0f;
  for (int64_t i = 0; i < n; ++i) amax = std::fmax(amax, std::fabs(x[i]));
  const float scale = row_scale(amax);
  for (int64_t i = 0; i < n; ++i) q[i] = from_float(x[i] / scale);
  return scale;
}

// Whether a code is e4m3fn's NaN (it has no infinities).
inline bool is_nan(uint8_t code) { return (code & 0x7f) == 0x7f; }

}  // namespace embedserve::fp8
