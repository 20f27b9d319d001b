// FastDivide: n / d for 31-bit n by one multiply-high, an add and a shift, for kernels that split a flat index.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define EMBEDSERVE_HOST_DEVICE __host__ __device__
#else
#define EMBEDSERVE_HOST_DEVICE
#endif

namespace embedserve::cuda {

// The quotient n / d for 0 ≤ n < 2^31 and 1 ≤ d < 2^31, d fixed when the kernel launches: Granlund and
// Montgomery's division by an invariant integer (what a compiler does for a constant divisor). A kernel that
// divides a 64-bit flat index by a runtime row length runs a 64-bit division subroutine per element, and the
// element-wise passes between the GEMMs are bound by issued instructions (ncu: docs/PERFORMANCE.md), so that
// subroutine is a real share of their time.
// With l = ⌈log2 d⌉ and m = ⌊2^32 · (2^l − d) / d⌋ + 1 (< 2^32), n / d = (⌊m · n / 2^32⌋ + n) >> l; the sum stays
// below 2^32 because ⌊m · n / 2^32⌋ < n < 2^31.
class FastDivide {
 public:
  explicit FastDivide(uint32_t divisor) : divisor_(divisor) {
    while ((uint64_t{1} << shift_) < divisor) ++shift_;
    magic_ = static_cast<uint32_t>((uint64_t{1} << 32) * ((uint64_t{1} << shift_) - divisor) / divisor + 1);
  }

  EMBEDSERVE_HOST_DEVICE uint32_t quotient(uint32_t n) const { return (multiply_high(n, magic_) + n) >> shift_; }
  EMBEDSERVE_HOST_DEVICE uint32_t divisor() const { return divisor_; }

 private:
  static EMBEDSERVE_HOST_DEVICE uint32_t multiply_high(uint32_t a, uint32_t b) {
#if defined(__CUDA_ARCH__)
    return __umulhi(a, b);
#else
    return static_cast<uint32_t>((uint64_t{a} * b) >> 32);
#endif
  }

  uint32_t divisor_;
  uint32_t magic_ = 0;
  uint32_t shift_ = 0;
};

}  // namespace embedserve::cuda

#undef EMBEDSERVE_HOST_DEVICE
