// current_device_facts: one driver query per device, then a relaxed atomic load.
#include "ops/cuda/device_facts.h"

#include <cuda_runtime.h>

#include <atomic>
#include <cstdint>
#include <string>

#include "ops/cuda/cuda_check.h"

namespace embedserve::cuda {

Status current_device_facts(DeviceFacts* facts) {
  constexpr int kDevices = 64;
  // Packed: multiprocessors in the low 16 bits, the compute capability's major and minor above; 0 = not yet asked.
  static std::atomic<uint32_t> known[kDevices];
  int device = 0;
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  if (device < 0 || device >= kDevices)
    return invalid_argument("device index " + std::to_string(device) + " past the " + std::to_string(kDevices) +
                            " this build keeps facts for");
  uint32_t packed = known[device].load(std::memory_order_relaxed);
  if (packed == 0) {
    int sms = 0, major = 0, minor = 0;
    EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
    EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
    packed = (static_cast<uint32_t>(sms) & 0xffffu) | (static_cast<uint32_t>(major & 0xff) << 16) |
             (static_cast<uint32_t>(minor & 0xff) << 24);
    known[device].store(packed, std::memory_order_relaxed);
  }
  facts->multiprocessors = static_cast<int>(packed & 0xffffu);
  facts->compute_major = static_cast<int>((packed >> 16) & 0xffu);
  facts->compute_minor = static_cast<int>(packed >> 24);
  return Status();
}

}  // namespace embedserve::cuda
