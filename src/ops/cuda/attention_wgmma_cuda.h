// The bf16 attention kernel for Hopper (wgmma), used by attention() for head_dim 128 on sm_90 when pairs of
// query heads share a kv head (every Qwen3 size).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/status.h"
#include "ops/cuda/attention_cuda.h"

namespace embedserve::cuda {

// Whether attention_bf16_wgmma takes this shape and these pointers on the current device: an sm_90 GPU (the
// kernel is built for sm_90a only), head_dim 128, an even number of query heads per kv head, k, v, q and out rows
// 16-byte aligned (q's rows are copied, and out's written, 16 bytes at a time).
bool attention_bf16_wgmma_supports(const AttentionShape& shape, const void* q, const void* k, const void* v,
                                   const void* out);

// attention() for bf16, same contract and same rounding as attention_bf16_mma (f32 scores, softmax and sums; p
// rounded to bf16 for the second product), on warpgroup MMAs.
Status attention_bf16_wgmma(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v,
                            __nv_bfloat16* out, const AttentionShape& shape, const int32_t* q_offsets,
                            const int32_t* q_positions, const int32_t* kv_offsets, const int32_t* tiles,
                            int64_t n_tiles, cudaStream_t stream);

}  // namespace embedserve::cuda
