// Helpers for GPU tests: skip without a device, and bf16 conversions that match the device's rounding.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "ops/cuda/cuda_device.h"

namespace embedserve::cuda {

inline bool gpu_available() {
  auto devices = list_devices();
  return devices.ok() && !devices->empty();
}

#define EMBEDSERVE_REQUIRE_GPU() \
  if (!::embedserve::cuda::gpu_available()) GTEST_SKIP() << "no CUDA device visible"

// Round-to-nearest-even float → bf16, the rounding __float2bfloat16 uses.
inline uint16_t float_to_bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_bits_to_float(uint16_t b) {
  uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace embedserve::cuda
