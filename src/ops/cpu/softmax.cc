// Softmax over one row of attention scores, in float32 as transformers computes it (dtype=torch.float32).
#include <cstdint>

#include "ops/cpu/exp_f32.h"
#include "ops/cpu/kernels.h"

namespace embedserve::ops::cpu {

__attribute__((target_clones("avx512f", "avx2", "default"))) void softmax(float* x, int64_t n) {
  float max = x[0];
  for (int64_t i = 1; i < n; ++i) max = x[i] > max ? x[i] : max;
  for (int64_t i = 0; i < n; ++i) x[i] = exp_f32(x[i] - max);
  double sum = 0.0;  // in order and in double: a 32k-term float sum would lose ~1e-4 relative
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

}  // namespace embedserve::ops::cpu
