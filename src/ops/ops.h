// The ops of a Qwen3 forward pass, declared once for every device: the model calls these and never a kernel.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "core/types.h"

namespace embedserve::ops {

// Shapes are written [rows, cols] row-major; "stride" is the distance in floats between consecutive rows,
// so a head's slice of a wider row can be passed without a copy. All float buffers are float32 in the
// memory of the backend that implements the interface (host memory for CpuOps).
class Ops {
 public:
  virtual ~Ops() = default;

  // Copies rows `ids` of a [vocab, dim] table stored as `dtype` (possibly unaligned, e.g. a mapped
  // safetensors tensor) into out f32 [n_ids, dim]. Ids are already checked against vocab by the engine.
  virtual void embedding(const void* table, DType dtype, int64_t dim, std::span<const int32_t> ids,
                         float* out) const = 0;

  // y = x * rsqrt(mean(x²) + eps) * w over each row of `dim`, rows at `stride` apart; x and y may alias.
  // Covers Qwen3RMSNorm for the layer norms (one row per token) and for q_norm/k_norm (one row per head).
  virtual void rms_norm(const float* x, const float* w, float* y, int64_t rows, int64_t dim, int64_t stride,
                        float eps) const = 0;

  // y f32 [m, n] = x f32 [m, k] · w f32 [n, k]ᵀ (nn.Linear without bias).
  // row_groups: offsets [g+1] splitting the m rows into sequences. A backend whose GEMM rounds a row
  // differently depending on m or on the row's place must compute each group on its own, so a sequence's
  // result never depends on the rest of the batch.
  virtual void linear(const float* x, const float* w, float* y, int64_t m, int64_t n, int64_t k,
                      std::span<const int32_t> row_groups) const = 0;

  // cos, sin f32 [n, head_dim/2] of angle = float(position) * inv_freq[i], the angle rounded to float32
  // exactly as transformers' Qwen3RotaryEmbedding computes it, then cos/sin of that float.
  virtual void rope_tables(std::span<const int32_t> positions, std::span<const float> inv_freq, float* cos,
                           float* sin) const = 0;
  // Rotates x f32 [n, heads, head_dim] (rows `stride` apart) in place, rotate-half layout:
  // x1' = x1·cos − x2·sin, x2' = x2·cos + x1·sin, where x1/x2 are the two halves of each head.
  virtual void apply_rope(float* x, const float* cos, const float* sin, int64_t n, int heads, int head_dim,
                          int64_t stride) const = 0;

  // Causal grouped-query attention within sequences, softmax in f32, scores scaled by `scale`.
  // q f32 [n_q, heads, head_dim]; k, v f32 [n_kv, kv_heads, head_dim]; out f32 [n_q, heads, head_dim].
  // Sequence s owns k/v rows [kv_offsets[s], kv_offsets[s+1]) and q rows [q_offsets[s], q_offsets[s+1]);
  // q row r sits at q_positions[r] within its sequence and attends to keys 0..q_positions[r].
  // Query head h reads kv head h / (heads / kv_heads).
  struct AttentionShape {
    int heads = 0;
    int kv_heads = 0;
    int head_dim = 0;
    float scale = 1.0f;
  };
  virtual void attention(const float* q, const float* k, const float* v, float* out, const AttentionShape& shape,
                         std::span<const int32_t> q_offsets, std::span<const int32_t> q_positions,
                         std::span<const int32_t> kv_offsets) const = 0;

  // out f32 [n, d] = silu(gate) * up, gate and up f32 [n, d] (Qwen3MLP's act_fn(gate_proj(x)) * up_proj(x)).
  virtual void silu_mul(const float* gate, const float* up, float* out, int64_t n, int64_t d) const = 0;

  // x += y, both f32 [n] (the residual connections).
  virtual void add(float* x, const float* y, int64_t n) const = 0;

  // out f32 [rows.size(), dim] = x rows `rows` of f32 [*, dim]. out may be x when rows ascend with
  // rows[i] ≥ i (a gather in place).
  virtual void gather_rows(const float* x, int64_t dim, std::span<const int32_t> rows, float* out) const = 0;
};

}  // namespace embedserve::ops
