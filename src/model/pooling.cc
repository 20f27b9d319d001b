// pooled_rows: which row of each sequence last-token and CLS pooling read (mean pooling reads every row).
#include "model/pooling.h"

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

}  // namespace embedserve
