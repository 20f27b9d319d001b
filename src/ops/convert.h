// Host-side dtype conversion of checkpoint tensors to float32, done once at load by every backend.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/types.h"

namespace embedserve::ops {

// dst f32 [n] = src [n] stored as `dtype`; src may be unaligned (a mapped safetensors tensor).
// bf16 and f16 widen to f32 exactly, so a converted weight holds the very values transformers uses.
void convert_to_f32(const void* src, DType dtype, float* dst, size_t n);

// The same, on the calling thread only: for callers that are threads of their own (the weight upload workers),
// where convert_to_f32's OpenMP team would nest inside them.
void convert_to_f32_serial(const void* src, DType dtype, float* dst, size_t n);

// One element, for kernels that convert as they read (the embedding table stays in its stored dtype).
float bf16_to_f32(uint16_t bits);
float f16_to_f32(uint16_t bits);

}  // namespace embedserve::ops
