// Shared helpers of the CPU op tests: seeded random inputs, poisoned outputs, float32 error bounds.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace embedserve::testing {

inline std::vector<float> random_floats(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Output buffers start as NaN so an element a kernel forgets to write fails every comparison.
inline std::vector<float> poisoned(size_t n) { return std::vector<float>(n, std::numeric_limits<float>::quiet_NaN()); }

// Float32 rounding of a length-k dot product is bounded by about k·2⁻²⁴·Σ|aᵢbᵢ| (Higham's γ_k); with
// blocked or vectorised sums the practical error is far smaller, so tests use this worst case / 8,
// which still fails any real mistake (a wrong index moves results by O(Σ|aᵢbᵢ|)).
inline double dot_tolerance(int64_t k, double abs_sum) { return std::max<double>(1, k / 8.0) * 0x1p-24 * abs_sum + 1e-30; }

}  // namespace embedserve::testing
