// Device memory for the CUDA backend: allocation on a given GPU and copies on a context's stream.
#pragma once

#include <cstddef>
#include <string>

#include "core/status.h"
#include "ops/context.h"

namespace embedserve::ops::cuda_backend {

// cudaMalloc on GPU `ordinal`; an out-of-memory error names `what`, the size, what is free, and the flag that helps.
Status allocate(int ordinal, size_t bytes, const std::string& what, void** out);
void release(int ordinal, void* p);
// cudaMemGetInfo's free bytes on GPU `ordinal`.
StatusOr<size_t> free_memory(int ordinal);
// Host → device, asynchronous on the context's stream (the host source may be reused once this returns:
// pageable memory is staged by the driver before the call returns).
Status copy_from_host(const DeviceContext& ctx, const void* src, void* dst, size_t bytes);
// Device → host, then waits for the stream.
Status copy_to_host(const DeviceContext& ctx, const void* src, void* dst, size_t bytes);
Status synchronize(const DeviceContext& ctx);

}  // namespace embedserve::ops::cuda_backend
