// Last-token, CLS and mean pooling over a padding-free batch.
#include "model/pooling.h"

#include <algorithm>
#include <vector>

namespace embedserve {

std::vector<int32_t> pooled_rows(std::span<const int32_t> seq_offsets, Pooling pooling) {
  std::vector<int32_t> rows;
  if (pooling == Pooling::kMean) return rows;
  for (size_t s = 0; s + 1 < seq_offsets.size(); ++s)
    // No padding exists, so the last token is simply the sequence's last row (sentence-transformers'
    // last-token pooling over a left-padded batch picks the same token).
    rows.push_back(pooling == Pooling::kLastToken ? seq_offsets[s + 1] - 1 : seq_offsets[s]);
  return rows;
}

void mean_pool(const float* hidden, int64_t dim, std::span<const int32_t> seq_offsets, float* out) {
  std::vector<double> sum(static_cast<size_t>(dim));
  for (size_t s = 0; s + 1 < seq_offsets.size(); ++s) {
    std::fill(sum.begin(), sum.end(), 0.0);
    for (int64_t r = seq_offsets[s]; r < seq_offsets[s + 1]; ++r)
      for (int64_t i = 0; i < dim; ++i) sum[i] += hidden[r * dim + i];
    const double count = seq_offsets[s + 1] - seq_offsets[s];
    for (int64_t i = 0; i < dim; ++i) out[static_cast<int64_t>(s) * dim + i] = static_cast<float>(sum[i] / count);
  }
}

}  // namespace embedserve
