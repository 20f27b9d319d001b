// pool: sentence-transformers' Pooling (+ Normalize), hidden states to one f32 vector per sequence.
#pragma once

#include "core/status.h"
#include "ops/context.h"
#include "ops/tensor.h"

namespace embedserve::ops {

// out f32 [n_seqs, dim] = the mean of rows [offsets[s], offsets[s+1]) of hidden [*, dim], summed in double, then,
// when `normalize`, divided by its L2 norm (sum of squares in double; a zero vector stays zero). Last-token and
// CLS pooling are this over one gathered row per sequence (offsets 0, 1, …, n_seqs), where the mean is the row.
Status pool(const DeviceContext& ctx, const Tensor& hidden, const Index& offsets, bool normalize, const Tensor& out);

}  // namespace embedserve::ops
