// Matryoshka truncation and L2 normalisation of pooled vectors.
#include "text/matryoshka.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace embedserve {

void l2_normalize(std::span<float> vec) {
  double sum = 0.0;  // double: a 4096-term sum of squares in float loses ~1e-7 relative, enough to show in parity tests
  for (float v : vec) sum += static_cast<double>(v) * v;
  if (sum <= 0.0) return;
  const float inv = static_cast<float>(1.0 / std::sqrt(sum));
  for (float& v : vec) v *= inv;
}

void truncate_and_normalize(std::span<const float> vec, std::span<float> out) {
  std::copy_n(vec.begin(), out.size(), out.begin());
  l2_normalize(out);
}

Status check_dimensions(long long dims, size_t hidden, const OptionNames& names) {
  if (dims >= 1 && static_cast<unsigned long long>(dims) <= hidden) return Status();
  return invalid_argument(names.dimensions + " must be between 1 and " + std::to_string(hidden) +
                          " (the model's hidden size), got " + std::to_string(dims));
}

std::vector<float> truncate_rows(std::span<const float> rows, size_t hidden, size_t dims, bool renormalize) {
  const size_t n = hidden ? rows.size() / hidden : 0;
  std::vector<float> out(n * dims);  // f32 [n, dims]
  for (size_t i = 0; i < n; ++i) {
    std::span<const float> row = rows.subspan(i * hidden, dims);
    std::span<float> dst(out.data() + i * dims, dims);
    if (renormalize) truncate_and_normalize(row, dst);
    else std::copy(row.begin(), row.end(), dst.begin());
  }
  return out;
}

}  // namespace embedserve
