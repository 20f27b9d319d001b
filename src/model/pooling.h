// Pooling: which hidden states become a sequence's vector (sentence-transformers' 1_Pooling modes).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/types.h"

namespace embedserve {

// For last-token and CLS pooling, the one row each sequence is read from: [n_seqs], ascending.
// Empty for mean pooling, which reads every row.
std::vector<int32_t> pooled_rows(std::span<const int32_t> seq_offsets, Pooling pooling);

}  // namespace embedserve
