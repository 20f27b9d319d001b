// Varlen causal grouped-query attention on the GPU, flash style: online softmax in f32 over key tiles held
// in shared memory, so memory stays O(n) at any length (a 32k-token input needs no 32k × 32k scores).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <algorithm>
#include <vector>

#include "core/status.h"

namespace embedserve::cuda {

// Query rows per tile of the plan: the tensor-core kernel's block (4 warps of 16 rows); the CUDA-core kernel runs a
// tile as kAttentionQueryTile / 32 blocks of 32 rows.
constexpr int kAttentionQueryTile = 64;

struct AttentionShape {
  int heads = 0;
  int kv_heads = 0;
  int head_dim = 0;  // even, at most 256
  float scale = 1.0f;
  int64_t q_stride = 0;   // elements between q rows (≥ heads · head_dim: q may be a column view); out is dense
  int64_t kv_stride = 0;  // elements between k rows, and between v rows (≥ kv_heads · head_dim)
  // The most keys any query row of the call sees (its position + 1), or 0 if not known. It picks kernels, never
  // values: a call of at most kAttentionOneTileKeys runs on the mma.sync kernel (see attention()).
  int max_keys = 0;
};

// Up to this many keys a row's whole softmax is one key tile of either tensor-core kernel (the Hopper kernel's
// first 64 keys, the mma.sync kernel's 64), and both give it the same bits.
constexpr int kAttentionOneTileKeys = 64;

// The key tile of the mma.sync kernel that holds every key of a call whose rows see at most max_keys keys: 16, 32
// or 64; 0 past kAttentionOneTileKeys (or for no keys), where the Hopper kernel's or 64-key tiles walk the keys.
inline int attention_one_tile_keys(int max_keys) {
  if (max_keys <= 0 || max_keys > kAttentionOneTileKeys) return 0;
  return max_keys <= 16 ? 16 : max_keys <= 32 ? 32 : 64;
}

// The grid of attention(): one (sequence, first query row) pair per tile of up to kAttentionQueryTile
// rows of one sequence, written as int32 pairs into `tiles`. q_offsets int32 [n_seqs + 1] (host).
// Under the causal mask a tile's work grows with how far into its sequence it reaches, so the tiles are listed
// furthest first: the longest blocks start in the first wave instead of finishing last, alone. (For a chunk
// continuing a sequence the row index stands in for the position; the order only affects speed, never values:
// every block computes its rows the same way wherever it runs.)
inline void attention_tiles(const int32_t* q_offsets, int64_t n_seqs, std::vector<int32_t>* tiles) {
  struct Tile {
    int32_t seq, first_row, reach;
  };
  std::vector<Tile> list;
  for (int64_t s = 0; s < n_seqs; ++s)
    for (int32_t r = q_offsets[s]; r < q_offsets[s + 1]; r += kAttentionQueryTile) {
      const int32_t end = r + kAttentionQueryTile < q_offsets[s + 1] ? r + kAttentionQueryTile : q_offsets[s + 1];
      list.push_back({static_cast<int32_t>(s), r, end - q_offsets[s]});
    }
  std::stable_sort(list.begin(), list.end(), [](const Tile& a, const Tile& b) { return a.reach > b.reach; });
  tiles->clear();
  for (const Tile& t : list) {
    tiles->push_back(t.seq);
    tiles->push_back(t.first_row);
  }
}
#ifdef __CUDACC__
// What one block of either attention kernel works on, read back from the tiles attention_tiles wrote: tile
// `index` (a sequence and its first query row), query head `head`, and of its rows those from `first` on, at most
// `rows` of them (the CUDA-core kernel splits a tile in two).
struct AttentionTile {
  int seq, q_begin, q_end, n_rows;  // query rows [q_begin, q_end) of sequence seq; n_rows ≤ 0: nothing to do
  int head, kv_head;                // the query head and the kv head it reads
  int64_t kv_begin;                 // the sequence's first k/v row
  int k_len;                        // keys the tile's last (furthest) row sees: positions ascend
};

__device__ inline AttentionTile attention_tile(const AttentionShape& shape, const int32_t* q_offsets,
                                               const int32_t* q_positions, const int32_t* kv_offsets,
                                               const int32_t* tiles, int index, int head, int first, int rows) {
  AttentionTile t;
  t.seq = tiles[2 * index];
  t.q_begin = tiles[2 * index + 1] + first;
  t.q_end = min(t.q_begin + rows, min(tiles[2 * index + 1] + kAttentionQueryTile, q_offsets[t.seq + 1]));
  t.n_rows = t.q_end - t.q_begin;
  t.head = head;
  t.kv_head = t.head / (shape.heads / shape.kv_heads);
  t.kv_begin = kv_offsets[t.seq];
  t.k_len = t.n_rows > 0 ? q_positions[t.q_end - 1] + 1 : 0;
  return t;
}
#endif

// The most tiles a batch of n_q query rows in n_seqs sequences can have.
inline int64_t max_attention_tiles(int64_t n_q, int64_t n_seqs) { return n_q / kAttentionQueryTile + n_seqs; }

// out T [n_q, heads, head_dim] = softmax(scale · q·kᵀ + causal mask) · v per sequence and head, with
// q T [n_q, heads, head_dim], k, v T [n_kv, kv_heads, head_dim] (rows shape.q_stride / kv_stride apart); query head h reads kv head h / (heads / kv_heads).
// Sequence s owns q rows [q_offsets[s], q_offsets[s+1]) and kv rows [kv_offsets[s], kv_offsets[s+1]); q row r
// sits at q_positions[r] and sees keys 0..q_positions[r]; a sequence's q rows must have ascending positions.
// Device arrays: q_offsets, kv_offsets int32 [n_seqs + 1], q_positions int32 [n_q], tiles int32 [2 · n_tiles]
// from attention_tiles. Scores, softmax and the weighted sum are f32; only the output is rounded to T.
template <typename T>
Status attention(const T* q, const T* k, const T* v, T* out, const AttentionShape& shape, const int32_t* q_offsets,
                 const int32_t* q_positions, const int32_t* kv_offsets, const int32_t* tiles, int64_t n_tiles,
                 cudaStream_t stream);

}  // namespace embedserve::cuda
