// cudaMalloc/cudaFree on a chosen GPU, and the stream-ordered copies of a context.
#include "ops/cuda/cuda_memory.h"

#include <cuda_runtime.h>

#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_context.h"

namespace embedserve::ops::cuda_backend {
namespace {

std::string mib(size_t bytes) { return std::to_string((bytes + (1u << 19)) >> 20) + " MiB"; }

}  // namespace

Status allocate(int ordinal, size_t bytes, const std::string& what, void** out) {
  int previous = -1;
  EMBEDSERVE_RETURN_IF_ERROR(set_device(ordinal, &previous));
  const cudaError_t err = cudaMalloc(out, bytes ? bytes : 1);
  size_t free_bytes = 0, total_bytes = 0;
  if (err != cudaSuccess) {
    cudaGetLastError();  // not sticky: the context stays usable
    *out = nullptr;
    cudaMemGetInfo(&free_bytes, &total_bytes);
  }
  cudaSetDevice(previous);
  if (err != cudaSuccess)
    return resource_exhausted("GPU " + std::to_string(ordinal) + " has no room for " + what + " (" + mib(bytes) +
                              " asked, " + mib(free_bytes) + " free of " + mib(total_bytes) + ": " +
                              cudaGetErrorString(err) + "); use a smaller --max-num-batched-tokens or "
                              "--context-length, or a GPU with more free memory");
  return Status();
}

StatusOr<size_t> free_memory(int ordinal) {
  int previous = -1;
  EMBEDSERVE_RETURN_IF_ERROR(set_device(ordinal, &previous));
  size_t free_bytes = 0, total_bytes = 0;
  const cudaError_t err = cudaMemGetInfo(&free_bytes, &total_bytes);
  cudaSetDevice(previous);
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(err);
  return free_bytes;
}

void release(int ordinal, void* p) {
  if (!p) return;
  int previous = -1;
  if (set_device(ordinal, &previous).ok()) {
    cudaFree(p);
    cudaSetDevice(previous);
  }
}

Status copy_from_host(const DeviceContext& ctx, const void* src, void* dst, size_t bytes) {
  if (bytes == 0) return Status();
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream(ctx)));
  return Status();
}

Status copy_to_host(const DeviceContext& ctx, const void* src, void* dst, size_t bytes) {
  if (bytes > 0) EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream(ctx)));
  return synchronize(ctx);
}

Status synchronize(const DeviceContext& ctx) {
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaStreamSynchronize(stream(ctx)));
  return Status();
}

}  // namespace embedserve::ops::cuda_backend
