// The bf16 attention kernel on tensor cores (mma.sync), used by attention() for head_dim 64 and 128.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/status.h"
#include "ops/cuda/attention_cuda.h"

namespace embedserve::cuda {

// Whether attention_bf16_mma takes this shape and these pointers (head_dim 64 or 128; k and v rows 16-byte
// aligned, q and out rows 4-byte aligned).
bool attention_bf16_mma_supports(const AttentionShape& shape, const void* q, const void* k, const void* v,
                                 const void* out);

// attention() for bf16, same contract, on tensor cores: S = q·kᵀ and o += p·v as bf16 mma with f32
// accumulation, online softmax in f32; p is rounded to bf16 for the second product, as FlashAttention-2
// (and so transformers' sdpa on the GPU) does.
Status attention_bf16_mma(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, __nv_bfloat16* out,
                          const AttentionShape& shape, const int32_t* q_offsets, const int32_t* q_positions,
                          const int32_t* kv_offsets, const int32_t* tiles, int64_t n_tiles, cudaStream_t stream);

}  // namespace embedserve::cuda
