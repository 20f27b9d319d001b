// Matryoshka truncation (OpenAI's `dimensions`): the leading components of a pooled vector, L2-normalised again.
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "core/status.h"
#include "text/option_names.h"

namespace embedserve {

// L2-normalises in place (a zero vector stays zero).
void l2_normalize(std::span<float> vec);

// Copies the first out.size() components of `vec` into `out` and L2-normalises them.
// out.size() must be in [1, vec.size()] (check_dimensions says so to the user first).
void truncate_and_normalize(std::span<const float> vec, std::span<float> out);

// A requested `dimensions` must be in [1, hidden]; the error names the knob as the caller spells it.
Status check_dimensions(long long dims, size_t hidden, const OptionNames& names);

// f32 [n, hidden] → f32 [n, dims]: each row's first `dims` components, L2-normalised unless `renormalize` is
// false (TEI's normalize=false asks for the raw leading components).
std::vector<float> truncate_rows(std::span<const float> rows, size_t hidden, size_t dims, bool renormalize = true);

}  // namespace embedserve
