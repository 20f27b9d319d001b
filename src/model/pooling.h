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

// out f32 [n_seqs, dim] = the mean of each sequence's rows of hidden f32 [n_tokens, dim], summed in double.
void mean_pool(const float* hidden, int64_t dim, std::span<const int32_t> seq_offsets, float* out);

}  // namespace embedserve
