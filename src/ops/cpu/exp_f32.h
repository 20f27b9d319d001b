// A branch-free float32 exp that compilers vectorise (libm's expf is a call per element): Cephes' expf,
// accurate to ~2 ulp over the range softmax and SiLU use. Shared by softmax.cc and elementwise.cc.
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>

namespace embedserve::ops::cpu {

inline float exp_f32(float x) {
  // Clamp so 2^n stays a normal float: below −87.3 the result would be subnormal (we return ~1e-38,
  // indistinguishable in softmax sums and SiLU); above 88 it saturates at e^88 = 1.65e38 instead of
  // overflowing (softmax arguments are ≤ 0; SiLU's e^-x only reaches it where silu(x) is ~1e-37 anyway).
  x = x < -87.33654f ? -87.33654f : (x > 88.0f ? 88.0f : x);
  const float n = std::floor(x * 1.44269504088896341f + 0.5f);  // x = n·ln2 + r, |r| ≤ ln2/2
  float r = x - n * 0.693359375f;                                 // ln2 split in two so n·ln2 is exact
  r = r - n * -2.12194440e-4f;
  const float r2 = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r2 + r + 1.0f;
  const int32_t e = static_cast<int32_t>(n) + 127;  // n in [−126, 127]; 2^n by building the exponent bits
  const float scale = std::bit_cast<float>(static_cast<uint32_t>(e < 1 ? 1 : (e > 254 ? 254 : e)) << 23);
  return p * scale;
}

}  // namespace embedserve::ops::cpu
