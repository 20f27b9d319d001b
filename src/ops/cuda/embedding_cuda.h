// Embedding lookup on the GPU: rows of the device-resident table gathered by token id.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "core/status.h"

namespace embedserve::cuda {

// out T [n, dim] = table T [vocab, dim] rows ids[0..n) (ids int32 [n] on the device, already checked
// against vocab by Engine::embed). T is float or __nv_bfloat16.
template <typename T>
Status embedding(const T* table, int64_t dim, const int32_t* ids, int64_t n, T* out, cudaStream_t stream);

}  // namespace embedserve::cuda
