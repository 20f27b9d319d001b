// Device discovery through the CUDA runtime (linked statically: the binary needs only the driver).
#include "ops/cuda/cuda_device.h"

#include <cuda_runtime.h>

#include "ops/cuda/cuda_check.h"

namespace embedserve::cuda {

namespace {
std::string format_version(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }
}  // namespace

StatusOr<std::vector<DeviceProperties>> list_devices() {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  // No driver, no device, or a driver too old for this runtime: a CPU machine, not a failure.
  if (err == cudaErrorNoDevice || err == cudaErrorInsufficientDriver) {
    cudaGetLastError();  // clear the sticky error so later calls start clean
    return std::vector<DeviceProperties>{};
  }
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(err);
  // cudaMemGetInfo reads the current device: select each in turn, then give the caller its device back.
  int previous = 0;
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaGetDevice(&previous));
  std::vector<DeviceProperties> devices;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, i));
    DeviceProperties d;
    d.index = i;
    d.name = prop.name;
    d.compute_major = prop.major;
    d.compute_minor = prop.minor;
    d.multiprocessors = prop.multiProcessorCount;
    d.total_memory_bytes = prop.totalGlobalMem;
    EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaSetDevice(i));
    size_t free_bytes = 0, total_bytes = 0;
    EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_bytes, &total_bytes));
    d.free_memory_bytes = free_bytes;
    devices.push_back(d);
  }
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaSetDevice(previous));
  return devices;
}

std::string runtime_version() {
  int v = 0;
  return cudaRuntimeGetVersion(&v) == cudaSuccess ? format_version(v) : "unknown";
}

std::string driver_version() {
  int v = 0;
  if (cudaDriverGetVersion(&v) != cudaSuccess || v == 0) return "none";
  return format_version(v);
}

}  // namespace embedserve::cuda
