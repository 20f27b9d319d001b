// attention_bf16_mma: FlashAttention-2's forward on mma.sync.m16n8k16 (bf16 in, f32 accumulators). One block of
// 4 warps per (64-query tile, head), each warp 16 query rows held as A fragments in registers. Key and value tiles
// of 64 rows stream through shared memory in two stages (cp.async: the next tile loads while this one is
// multiplied); ldmatrix reads k's B fragments as stored and v's through its transposing form, so neither is
// rearranged on the way in. The scores' accumulator fragments become the second product's A fragments in registers.
// A call whose rows all see at most 16 or 32 keys (queries, short texts) runs with key tiles of that size: one tile,
// whose keys past 16 or 32 would only have added exact zeros, so every value is what the 64-key tile gives it.
#include "ops/cuda/attention_mma_cuda.h"

#include <cmath>
#include <cstdint>

#include "ops/cuda/cuda_check.h"
#include "ops/cuda/attention_softmax.cuh"
#include "ops/cuda/dependent_launch.cuh"
#include "ops/cuda/mma_util.cuh"

namespace embedserve::cuda {
namespace {

constexpr int kWarps = kAttentionQueryTile / 16;  // 4 warps × 16 rows = one plan tile
constexpr int kThreads = kWarps * 32;
constexpr int kStages = 2;   // double buffering: load tile j + 1 while tile j is multiplied
constexpr unsigned kFull = 0xffffffffu;

// Rows of a stage padded by 8 bf16 (16 bytes): the 8 row addresses of each ldmatrix phase, 16·hd + 16 bytes
// apart, fall in distinct bank groups; the 16-byte cp.async writes stay aligned.
template <int kHd, int kKeys>  // kKeys: keys per shared-memory stage
struct Stage {
  static constexpr int kStride = kHd + 8;             // bf16 per row
  static constexpr int kElems = kKeys * kStride;      // one tile, k or v
  static constexpr size_t kBytes = size_t(kStages) * 2 * kElems * sizeof(__nv_bfloat16);
};

template <int kHd, int kKeys>
__global__ void __launch_bounds__(kThreads)
    attention_mma_kernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
                         const __nv_bfloat16* __restrict__ v, __nv_bfloat16* __restrict__ out, AttentionShape shape,
                         const int32_t* __restrict__ q_offsets, const int32_t* __restrict__ q_positions,
                         const int32_t* __restrict__ kv_offsets, const int32_t* __restrict__ tiles) {
  let_dependents_start();  // a GEMM after this kernel may start streaming its weights
  using S = Stage<kHd, kKeys>;
  extern __shared__ __align__(16) unsigned char smem_bytes[];
  __nv_bfloat16* const smem = reinterpret_cast<__nv_bfloat16*>(smem_bytes);  // per stage: k tile, then v tile
  // Consecutive blocks are the heads of one tile: the heads that share a kv head read its tiles close in time.
  const AttentionTile tile = attention_tile(shape, q_offsets, q_positions, kv_offsets, tiles,
                                            blockIdx.x / shape.heads, blockIdx.x % shape.heads, 0,
                                            kAttentionQueryTile);
  const int q_begin = tile.q_begin, n_rows = tile.n_rows, h = tile.head, kvh = tile.kv_head, k_len = tile.k_len;
  const int64_t kv_begin = tile.kv_begin;
  const int64_t q_stride = shape.q_stride, kv_stride = shape.kv_stride, out_stride = int64_t{shape.heads} * kHd;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int r_lo = warp * 16 + g, r_hi = r_lo + 8;  // this thread's two rows of the tile
  const int pos_lo = r_lo < n_rows ? q_positions[q_begin + r_lo] : -1;
  const int pos_hi = r_hi < n_rows ? q_positions[q_begin + r_hi] : -1;
  // The warp's furthest row (key tiles past it are skipped) and nearest row (key tiles up to it need no mask).
  int warp_last = max(pos_lo, pos_hi);
  int warp_first = min(pos_lo < 0 ? INT32_MAX : pos_lo, pos_hi < 0 ? INT32_MAX : pos_hi);
  for (int o = 16; o > 0; o /= 2) {
    warp_last = max(warp_last, __shfl_xor_sync(kFull, warp_last, o));
    warp_first = min(warp_first, __shfl_xor_sync(kFull, warp_first, o));
  }

  // Stage a key tile: k and v rows [k0, k0 + kKeys) of the sequence's kv head, zeros past k_len.
  const __nv_bfloat16* const k_head = k + kv_begin * kv_stride + int64_t{kvh} * kHd;
  const __nv_bfloat16* const v_head = v + kv_begin * kv_stride + int64_t{kvh} * kHd;
  auto load_tile = [&](int stage, int k0) {
    __nv_bfloat16* ks = smem + stage * 2 * S::kElems;
    __nv_bfloat16* vs = ks + S::kElems;
#pragma unroll
    for (int c = threadIdx.x; c < kKeys * kHd / 8; c += kThreads) {
      const int j = c / (kHd / 8), d = (c % (kHd / 8)) * 8;
      const bool in = k0 + j < k_len;
      const int64_t off = in ? int64_t{k0 + j} * kv_stride + d : 0;
      copy16_async(ks + j * S::kStride + d, k_head + off, in ? 16 : 0);
      copy16_async(vs + j * S::kStride + d, v_head + off, in ? 16 : 0);
    }
  };
  const int n_key_tiles = (k_len + kKeys - 1) / kKeys;
  if (n_key_tiles > 0) load_tile(0, 0);
  commit_copies();

  // q as A fragments, for the whole head: row g / g+8, columns 2t, 2t+1 (+8). Loaded while the first tile flies.
  uint32_t qa[kHd / 16][4];
  const __nv_bfloat16* q_lo = q + (q_begin + r_lo) * q_stride + int64_t{h} * kHd;
  const __nv_bfloat16* q_hi = q + (q_begin + r_hi) * q_stride + int64_t{h} * kHd;
  load_a_fragments<kHd>(qa, q_lo, pos_lo >= 0, q_hi, pos_hi >= 0, t);
  float o[kHd / 8][4];
#pragma unroll
  for (int n = 0; n < kHd / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  SoftmaxRows rows;
  const float scale_log2 = shape.scale * 1.4426950408889634f;  // softmax in base 2: exp(x) = exp2(x · log2 e)
  // ldmatrix row addresses: lane l serves row l % 8 of matrix l / 8.
  const int mat = lane / 8, mat_row = lane % 8;

  for (int it = 0; it < n_key_tiles; ++it) {
    const int k0 = it * kKeys;
    if (it + 1 < n_key_tiles) {
      load_tile((it + 1) % kStages, k0 + kKeys);  // into the stage the previous iteration finished with
      commit_copies();
      wait_copies<1>();  // tile it has landed; tile it + 1 may still fly
    } else {
      wait_copies<0>();
    }
    __syncthreads();
    const __nv_bfloat16* ks = smem + (it % kStages) * 2 * S::kElems;
    const __nv_bfloat16* vs = ks + S::kElems;
    if (k0 <= warp_last) {  // warp-uniform: some row of this warp sees some of these keys
      // s = q · kᵀ: B (k = dim, n = key) is k's rows as stored. One ldmatrix.x4 gives the two 8-key fragments
      // of 16 dims: matrices (keys 16p..+7, dims lo), (same, dims hi), (keys 16p+8..+15, lo), (same, hi).
      float s[kKeys / 2];  // key 8n + 2t + e % 2 of row g (e < 2) or g + 8 at s[4n + e]
#pragma unroll
      for (int i = 0; i < kKeys / 2; ++i) s[i] = 0.0f;
#pragma unroll
      for (int kd = 0; kd < kHd / 16; ++kd)
#pragma unroll
        for (int p = 0; p < kKeys / 16; ++p) {
          uint32_t b[4];
          ldmatrix_x4(b, ks + ((2 * p + mat / 2) * 8 + mat_row) * S::kStride + kd * 16 + (mat % 2) * 8);
          mma_m16n8k16(&s[8 * p], qa[kd], b[0], b[1]);
          mma_m16n8k16(&s[8 * p + 4], qa[kd], b[2], b[3]);
        }
      float alpha_lo, alpha_hi;
      uint32_t pa[kKeys / 16][4];
      softmax_tile<kKeys>(s, k0, pos_lo, pos_hi, /*masked=*/k0 + kKeys - 1 > warp_first, scale_log2, rows, pa,
                          alpha_lo, alpha_hi);
      rescale_outputs<kHd>(&o[0][0], alpha_lo, alpha_hi);
      // o += p · v: B (k = key, n = dim) is v's [key][dim] rows through ldmatrix.trans. One x4 gives the two
      // 8-dim fragments of 16 keys: matrices (keys lo, dims 16p..+7), (keys hi, same), (keys lo, dims +8), (hi, +8).
#pragma unroll
      for (int kk = 0; kk < kKeys / 16; ++kk)
#pragma unroll
        for (int p = 0; p < kHd / 16; ++p) {
          uint32_t b[4];
          ldmatrix_x4_trans(b, vs + (kk * 16 + (mat % 2) * 8 + mat_row) * S::kStride + (2 * p + mat / 2) * 8);
          mma_m16n8k16(o[2 * p], pa[kk], b[0], b[1]);
          mma_m16n8k16(o[2 * p + 1], pa[kk], b[2], b[3]);
        }
    }
    __syncthreads();  // every warp is done with this stage before the next iteration refills it
  }
  finish_sums(rows);
  __nv_bfloat16* o_lo = out + (q_begin + r_lo) * out_stride + int64_t{h} * kHd + 2 * t;
  __nv_bfloat16* o_hi = out + (q_begin + r_hi) * out_stride + int64_t{h} * kHd + 2 * t;
  store_outputs<kHd>(&o[0][0], rows, o_lo, pos_lo >= 0, o_hi, pos_hi >= 0);
}

bool aligned(const void* p, uintptr_t bytes) { return (reinterpret_cast<uintptr_t>(p) & (bytes - 1)) == 0; }

template <int kHd, int kKeys>
Status launch(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, __nv_bfloat16* out,
              const AttentionShape& shape, const int32_t* q_offsets, const int32_t* q_positions,
              const int32_t* kv_offsets, const int32_t* tiles, int64_t n_tiles, cudaStream_t stream) {
  using S = Stage<kHd, kKeys>;
  // Past 48 KB a block's dynamic shared memory must be allowed explicitly (head_dim 128: 68 KB).
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(attention_mma_kernel<kHd, kKeys>,
                                                       cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                       static_cast<int>(S::kBytes)));
  const unsigned blocks = static_cast<unsigned>(n_tiles * shape.heads);
  attention_mma_kernel<kHd, kKeys><<<blocks, kThreads, S::kBytes, stream>>>(q, k, v, out, shape, q_offsets,
                                                                           q_positions, kv_offsets, tiles);
  return cuda_status(cudaGetLastError(), "attention_bf16_mma launch");
}

// The key tile: 64 keys, or one tile of 16 or 32 when no row sees more (shape.max_keys).
template <int kHd>
Status launch_for_keys(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, __nv_bfloat16* out,
                       const AttentionShape& shape, const int32_t* q_offsets, const int32_t* q_positions,
                       const int32_t* kv_offsets, const int32_t* tiles, int64_t n_tiles, cudaStream_t stream) {
  const int one_tile = attention_one_tile_keys(shape.max_keys);
  if (one_tile == 16)
    return launch<kHd, 16>(q, k, v, out, shape, q_offsets, q_positions, kv_offsets, tiles, n_tiles, stream);
  if (one_tile == 32)
    return launch<kHd, 32>(q, k, v, out, shape, q_offsets, q_positions, kv_offsets, tiles, n_tiles, stream);
  return launch<kHd, 64>(q, k, v, out, shape, q_offsets, q_positions, kv_offsets, tiles, n_tiles, stream);
}

}  // namespace

bool attention_bf16_mma_supports(const AttentionShape& shape, const void* q, const void* k, const void* v,
                                 const void* out) {
  // k/v rows are copied 16 bytes at a time: their start and stride must keep that alignment.
  return (shape.head_dim == 64 || shape.head_dim == 128) && aligned(k, 16) && aligned(v, 16) && aligned(q, 4) &&
         aligned(out, 4) && shape.kv_stride % 8 == 0 && shape.q_stride % 2 == 0;
}

Status attention_bf16_mma(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, __nv_bfloat16* out,
                          const AttentionShape& shape, const int32_t* q_offsets, const int32_t* q_positions,
                          const int32_t* kv_offsets, const int32_t* tiles, int64_t n_tiles, cudaStream_t stream) {
  if (!attention_bf16_mma_supports(shape, q, k, v, out))
    return invalid_argument("attention_bf16_mma: head_dim must be 64 or 128 with aligned rows");
  if (n_tiles == 0) return Status();
  if (n_tiles * shape.heads > 0x7fffffff) return invalid_argument("attention_bf16_mma: too many tiles for one grid");
  if (shape.head_dim == 128)
    return launch_for_keys<128>(q, k, v, out, shape, q_offsets, q_positions, kv_offsets, tiles, n_tiles, stream);
  return launch_for_keys<64>(q, k, v, out, shape, q_offsets, q_positions, kv_offsets, tiles, n_tiles, stream);
}

}  // namespace embedserve::cuda
