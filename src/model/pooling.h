// Pooling: which hidden states become a sequence's vector (sentence-transformers' 1_Pooling modes).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/types.h"

namespace embedserve {

// Whether an input can be embedded in chunks under `pooling`: last-token pooling reads one row of the last
// chunk; mean pooling would need every chunk's final rows and CLS the first chunk's, neither of which a later
// chunk holds.
inline bool pools_from_last_chunk(Pooling pooling) { return pooling == Pooling::kLastToken; }

// For last-token and CLS pooling, the one row each sequence is read from: [n_seqs], ascending.
// Empty for mean pooling, which reads every row.
std::vector<int32_t> pooled_rows(std::span<const int32_t> seq_offsets, Pooling pooling);

}  // namespace embedserve
