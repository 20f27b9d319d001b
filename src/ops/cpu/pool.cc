// Mean / last-token / CLS pooling and L2 normalisation on the CPU, in double like sentence-transformers' f32
// reference loses least (the same sums as the CUDA kernel, so both backends agree to rounding).
#include <cmath>
#include <vector>

#include "ops/cpu/kernels.h"

namespace embedserve::ops::cpu {

void pool(const float* hidden, int64_t dim, std::span<const int32_t> offsets, bool normalize, float* out) {
  std::vector<double> sum(static_cast<size_t>(dim));
  for (size_t s = 0; s + 1 < offsets.size(); ++s) {
    std::fill(sum.begin(), sum.end(), 0.0);
    for (int64_t r = offsets[s]; r < offsets[s + 1]; ++r)
      for (int64_t i = 0; i < dim; ++i) sum[i] += hidden[r * dim + i];
    const double count = offsets[s + 1] - offsets[s];
    float* o = out + static_cast<int64_t>(s) * dim;
    double squares = 0.0;  // a 4096-term sum of squares in float loses ~1e-7 relative: enough to show in parity
    for (int64_t i = 0; i < dim; ++i) {
      o[i] = static_cast<float>(sum[i] / count);
      squares += static_cast<double>(o[i]) * o[i];
    }
    if (!normalize || squares <= 0.0) continue;
    const float inv = static_cast<float>(1.0 / std::sqrt(squares));
    for (int64_t i = 0; i < dim; ++i) o[i] *= inv;
  }
}

}  // namespace embedserve::ops::cpu
