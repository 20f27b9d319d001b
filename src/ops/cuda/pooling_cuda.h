// Pooling and L2 normalisation on the GPU: the last step from hidden states T to the f32 output vectors.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/status.h"

namespace embedserve::cuda {

// out f32 [n_seqs, dim] = the mean of rows [offsets[s], offsets[s+1]) of hidden T [*, dim], summed in double,
// then, when `normalize`, divided by its L2 norm (sum of squares in double; a zero vector stays zero), as
// sentence-transformers' Pooling and Normalize modules do. Last-token and CLS pooling are this with one
// gathered row per sequence (offsets 0, 1, …, n_seqs), where the mean is that row exactly.
template <typename T>
Status pool_normalize(const T* hidden, int64_t dim, const int32_t* offsets, int64_t n_seqs, bool normalize,
                      float* out, cudaStream_t stream);

}  // namespace embedserve::cuda
