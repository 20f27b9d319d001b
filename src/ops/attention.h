// attention: causal grouped-query attention within the sequences of a padding-free batch.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/status.h"
#include "ops/context.h"
#include "ops/tensor.h"

namespace embedserve::ops {

struct AttentionShape {
  int heads = 0;
  int kv_heads = 0;  // divides heads; query head h reads kv head h / (heads / kv_heads)
  int head_dim = 0;
  float scale = 1.0f;
};

// Whether the context's backend runs this shape (CUDA: head_dim even and at most 256); checked at model load so
// an unsupported checkpoint fails then, not at its first request.
Status check_attention_shape(const DeviceContext& ctx, const AttentionShape& shape);

// How the backend splits a batch's query rows into work (CUDA: one tile per 64 query rows of a sequence), from
// the host offsets of the query rows. Empty where the backend needs no plan. Staged with the batch's other
// indices, so planning costs no copy of its own.
std::vector<int32_t> attention_plan(const DeviceContext& ctx, std::span<const int32_t> q_offsets);

// The kernel a call whose rows see at most `max_keys` keys runs, as a small number (0 to 3): on CUDA in bf16, the
// mma.sync kernel with one key tile of 16, 32 or 64 keys, or past 64 keys the kernels that walk many tiles; 0 on the
// CPU. Besides the plan's size it is the only choice attention makes by value, so a recorded graph's key names it
// (ops/graph.h): a graph recorded for shorter sequences and replayed for longer ones would walk their keys in more,
// smaller tiles, and a row's bits would then depend on which batch recorded its bucket's graph.
int attention_kernel_choice(const DeviceContext& ctx, int32_t max_keys);

// out [n_q, heads * head_dim] = softmax(scale · q·kᵀ + causal mask) · v per sequence and head, with q
// [n_q, heads * head_dim] and k, v [n_kv, kv_heads * head_dim]. Rows may be strided (q, k and v column views of one
// fused projection's output); k and v share a stride, out is dense. Query row r of sequence s (q_rows) sees the keys
// at positions 0..q_rows.positions[r] of kv rows [kv_offsets[s], kv_offsets[s+1]). Softmax in f32; memory O(n),
// never the [n, n] scores. `plan` is attention_plan(ctx, q_rows.offsets.host), staged.
Status attention(const DeviceContext& ctx, const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                 const AttentionShape& shape, const SequenceRows& q_rows, const Index& kv_offsets, const Index& plan);

}  // namespace embedserve::ops
