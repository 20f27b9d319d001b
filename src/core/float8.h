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
// __NV_E4M3) does, so the CPU reference quantises as the GPU kernels do); NaN → 0x7f.
inline uint8_t from_float(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
  const float a = std::fabs(x);
  if (std::isnan(a)) return 0x7f;
  if (a >= kE4M3Max) return sign | 0x7e;
  if (a < 0.015625f) {  // below 2^-6: subnormals are multiples of 2^-9; 8·2^-9 rounds up into the first normal
    const float m = std::nearbyint(a * 512.0f);  // exact scaling, then round half to even
    return sign | static_cast<uint8_t>(m);
  }
  const uint32_t abits = bits & 0x7fffffffu;
  int exponent = static_cast<int>(abits >> 23) - 127;  // -6 … 8
  uint32_t mantissa = (abits & 0x7fffffu) >> 20;
  const uint32_t rest = abits & 0xfffffu;
  if (rest > 0x80000u || (rest == 0x80000u && (mantissa & 1u))) ++mantissa;
  if (mantissa == 8) {
    mantissa = 0;
    ++exponent;
  }
  if (exponent > 8 || (exponent == 8 && mantissa == 7)) return sign | 0x7e;  // past 448: saturate
  return sign | static_cast<uint8_t>(((exponent + 7) << 3) | static_cast<int>(mantissa));
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
