// Element types of the CUDA backend's activations: f32 (the parity mode) and bf16 (the speed mode), with
// conversions that round exactly where PyTorch rounds, so one templated kernel serves both.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

namespace embedserve::cuda {

// Loads and stores through f32: every kernel computes in f32 and rounds to T where transformers'
// bf16 module would hold a bf16 tensor (after each PyTorch op), and nowhere else.
__device__ __forceinline__ float to_f32(float v) { return v; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T>
__device__ __forceinline__ T from_f32(float v);
template <>
__device__ __forceinline__ float from_f32<float>(float v) { return v; }
template <>
__device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

// Rounds an f32 value to T and back: the value a T tensor would hold.
template <typename T>
__device__ __forceinline__ float round_to(float v) { return to_f32(from_f32<T>(v)); }

}  // namespace embedserve::cuda
