// Varlen causal grouped-query attention on the GPU, flash style: online softmax in f32 over key tiles held
// in shared memory, so memory stays O(n) at any length (a 32k-token input needs no 32k × 32k scores).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "core/status.h"

namespace embedserve::cuda {

// Query rows per thread block: 4 warps of 8 rows.
constexpr int kAttentionQueryTile = 32;

struct AttentionShape {
  int heads = 0;
  int kv_heads = 0;
  int head_dim = 0;  // even, at most 256
  float scale = 1.0f;
};

// The grid of attention(): one (sequence, first query row) pair per tile of up to kAttentionQueryTile
// rows of one sequence, written as int32 pairs into `tiles`. q_offsets int32 [n_seqs + 1] (host).
inline void attention_tiles(const int32_t* q_offsets, int64_t n_seqs, std::vector<int32_t>* tiles) {
  tiles->clear();
  for (int64_t s = 0; s < n_seqs; ++s)
    for (int32_t r = q_offsets[s]; r < q_offsets[s + 1]; r += kAttentionQueryTile) {
      tiles->push_back(static_cast<int32_t>(s));
      tiles->push_back(r);
    }
}
#ifdef __CUDACC__
// What one block of either attention kernel works on, read back from the tiles attention_tiles wrote:
// blockIdx.x picks the tile (a sequence and its first query row), blockIdx.y the query head.
struct AttentionTile {
  int seq, q_begin, q_end, n_rows;  // query rows [q_begin, q_end) of sequence seq
  int head, kv_head;                // the query head and the kv head it reads
  int64_t kv_begin;                 // the sequence's first k/v row
  int k_len;                        // keys the tile's last (furthest) row sees: positions ascend
};

__device__ inline AttentionTile attention_tile(const AttentionShape& shape, const int32_t* q_offsets,
                                               const int32_t* q_positions, const int32_t* kv_offsets,
                                               const int32_t* tiles) {
  AttentionTile t;
  t.seq = tiles[2 * blockIdx.x];
  t.q_begin = tiles[2 * blockIdx.x + 1];
  t.q_end = min(t.q_begin + kAttentionQueryTile, q_offsets[t.seq + 1]);
  t.n_rows = t.q_end - t.q_begin;
  t.head = blockIdx.y;
  t.kv_head = t.head / (shape.heads / shape.kv_heads);
  t.kv_begin = kv_offsets[t.seq];
  t.k_len = q_positions[t.q_end - 1] + 1;
  return t;
}
#endif

// The most tiles a batch of n_q query rows in n_seqs sequences can have.
inline int64_t max_attention_tiles(int64_t n_q, int64_t n_seqs) { return n_q / kAttentionQueryTile + n_seqs; }

// out T [n_q, heads, head_dim] = softmax(scale · q·kᵀ + causal mask) · v per sequence and head, with
// q T [n_q, heads, head_dim], k, v T [n_kv, kv_heads, head_dim]; query head h reads kv head h / (heads / kv_heads).
// Sequence s owns q rows [q_offsets[s], q_offsets[s+1]) and kv rows [kv_offsets[s], kv_offsets[s+1]); q row r
// sits at q_positions[r] and sees keys 0..q_positions[r]; a sequence's q rows must have ascending positions.
// Device arrays: q_offsets, kv_offsets int32 [n_seqs + 1], q_positions int32 [n_q], tiles int32 [2 · n_tiles]
// from attention_tiles. Scores, softmax and the weighted sum are f32; only the output is rounded to T.
template <typename T>
Status attention(const T* q, const T* k, const T* v, T* out, const AttentionShape& shape, const int32_t* q_offsets,
                 const int32_t* q_positions, const int32_t* kv_offsets, const int32_t* tiles, int64_t n_tiles,
                 cudaStream_t stream);

}  // namespace embedserve::cuda
