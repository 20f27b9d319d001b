// Rotary position embedding and the q/k RMSNorm before it (Qwen3Attention: q_norm/k_norm, then RoPE).
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/status.h"
#include "ops/context.h"
#include "ops/tensor.h"

namespace embedserve::ops {

// The angles of one set of rows: angle = float(position) * inv_freq[i], rounded to f32 exactly as
// Qwen3RotaryEmbedding computes it, and their cos/sin tables, computed once per batch by rotary_table (on the host
// for the CPU, by a kernel on the context's stream for CUDA) and read by every layer's qk_norm_rope.
struct RotaryTable {
  Index positions;              // int32 [n]
  const float* inv_freq = nullptr;  // f32 [head_dim / 2] on the device
  int head_dim = 0;
  float* cos = nullptr;         // f32 [n, head_dim / 2] in the context's memory
  float* sin = nullptr;
};

// Scratch bytes rotary_table needs for n rows (the two tables), in the context's memory.
size_t rotary_table_bytes(const DeviceContext& ctx, int64_t n, int head_dim);
// Prepares the angles of `positions` in `scratch` (rotary_table_bytes long).
StatusOr<RotaryTable> rotary_table(const DeviceContext& ctx, const Index& positions, const Tensor& inv_freq,
                                   int head_dim, void* scratch);

// In place on x [n, heads * head_dim] (rows may be strided: q or k as a column view of a fused projection's
// output): each head's row is RMS-normalised with weight [1, head_dim] (q_norm or
// k_norm), then rotated by its row's angles in the rotate-half layout (x1' = x1·cos − x2·sin,
// x2' = x2·cos + x1·sin), each product and sum rounded to the context's dtype as torch rounds them.
Status qk_norm_rope(const DeviceContext& ctx, const Tensor& x, const Tensor& norm_weight, float eps,
                    const RotaryTable& rotary);
// The same for k and q of the same rows at once (one kernel on CUDA where the head size allows: a small batch
// pays one launch instead of two).
Status qk_norm_rope(const DeviceContext& ctx, const Tensor& k, const Tensor& k_norm, const Tensor& q,
                    const Tensor& q_norm, float eps, const RotaryTable& rotary);

}  // namespace embedserve::ops
