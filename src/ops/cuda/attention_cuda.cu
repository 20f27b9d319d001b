// attention: one block per (32-query half of a plan tile, head). Each warp owns 8 query rows; a key tile of 32 rows is staged in
// shared memory as f32 and lane j scores key j, so the softmax max and sum are warp shuffles and the
// probabilities reach the weighted sum of V by shuffle too. Scores never leave registers. CUDA cores, f32:
// the f32 parity mode and head sizes other than 64/128; bf16 at 64/128 goes to attention_wgmma_cuda.cu on Hopper
// (head_dim 128, pairs of query heads per kv head) or to attention_mma_cuda.cu.
#include "ops/cuda/attention_cuda.h"

#include <cuda_bf16.h>

#include <cmath>
#include <string>
#include <type_traits>

#include "ops/cuda/attention_mma_cuda.h"
#include "ops/cuda/attention_wgmma_cuda.h"
#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_dtype.h"

namespace embedserve::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kBlockRows = 32;                   // query rows per block: a plan tile runs as blockIdx.z's halves
constexpr int kRowsPerWarp = kBlockRows / kWarps;  // 8
constexpr int kKeyTile = 32;                                 // one key per lane
constexpr int kMaxDimsPerLane = 8;                           // head_dim ≤ 256
constexpr unsigned kFull = 0xffffffffu;

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(kFull, v, o));
  return v;
}
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(kFull, v, o);
  return v;
}

// q and k rows are padded with zeros to whole float4s (kq floats) so scores read 16 bytes at a time.
__host__ __device__ inline int padded(int hd) { return (hd + 3) & ~3; }

size_t smem_bytes(int hd) {
  // q [32][kq], k [32][kq + 4] (the pad puts the 8 lanes of each 16-byte load phase in distinct banks),
  // v [32][hd], all f32
  const size_t kq = padded(hd);
  return sizeof(float) * (size_t(kBlockRows) * kq + size_t(kKeyTile) * (kq + 4) + size_t(kKeyTile) * hd);
}

// kDims: output columns per lane (head_dim ≤ 32 · kDims), so the accumulators stay in registers.
template <typename T, int kDims>
__global__ void __launch_bounds__(kWarps * 32)
    attention_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, T* __restrict__ out,
                     AttentionShape shape, const int32_t* __restrict__ q_offsets,
                     const int32_t* __restrict__ q_positions, const int32_t* __restrict__ kv_offsets,
                     const int32_t* __restrict__ tiles) {
  extern __shared__ float4 smem4[];
  const int hd = shape.head_dim, kq = padded(hd);
  float* qs = reinterpret_cast<float*>(smem4);  // f32 [32, kq]
  float* ks = qs + kBlockRows * kq;             // f32 [32, kq + 4]
  float* vs = ks + kKeyTile * (kq + 4);         // f32 [32, hd]
  const AttentionTile tile = attention_tile(shape, q_offsets, q_positions, kv_offsets, tiles, blockIdx.x,
                                           blockIdx.y, blockIdx.z * kBlockRows, kBlockRows);
  if (tile.n_rows <= 0) return;  // the second half of a short tile (uniform over the block)
  const int q_begin = tile.q_begin, n_rows = tile.n_rows;
  const int h = tile.head, kvh = tile.kv_head, k_len = tile.k_len;
  const int64_t kv_begin = tile.kv_begin;
  const int64_t q_stride = shape.q_stride, kv_stride = shape.kv_stride, out_stride = int64_t{shape.heads} * hd;

  for (int i = threadIdx.x; i < kBlockRows * kq; i += blockDim.x) {
    const int r = i / kq, d = i % kq;
    qs[i] = r < n_rows && d < hd ? to_f32(q[(q_begin + r) * q_stride + int64_t{h} * hd + d]) : 0.0f;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  int pos[kRowsPerWarp];
  float m[kRowsPerWarp], l[kRowsPerWarp], acc[kRowsPerWarp][kDims];
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    const int row = warp * kRowsPerWarp + r;
    pos[r] = row < n_rows ? q_positions[q_begin + row] : -1;  // -1: no row, sees no key
    m[r] = -INFINITY;
    l[r] = 0.0f;
#pragma unroll
    for (int i = 0; i < kDims; ++i) acc[r][i] = 0.0f;
  }
  const float4* q4 = reinterpret_cast<const float4*>(qs + warp * kRowsPerWarp * kq);
  const float4* k4 = reinterpret_cast<const float4*>(ks + lane * (kq + 4));

  for (int k0 = 0; k0 < k_len; k0 += kKeyTile) {
    __syncthreads();  // the previous tile is consumed (and q is staged, the first time)
    for (int i = threadIdx.x; i < kKeyTile * kq; i += blockDim.x) {
      const int j = i / kq, d = i % kq;
      const bool in = k0 + j < k_len && d < hd;
      const int64_t off = (kv_begin + k0 + j) * kv_stride + int64_t{kvh} * hd + d;
      ks[j * (kq + 4) + d] = in ? to_f32(k[off]) : 0.0f;
      if (d < hd) vs[j * hd + d] = in ? to_f32(v[off]) : 0.0f;
    }
    __syncthreads();
    // Lane j scores key k0 + j against the warp's 8 rows: one 16-byte load of k serves 8 rows.
    float s[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) s[r] = 0.0f;
    for (int d4 = 0; d4 < kq / 4; ++d4) {
      const float4 kv = k4[d4];
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        const float4 qv = q4[r * (kq / 4) + d4];
        s[r] = fmaf(qv.x, kv.x, fmaf(qv.y, kv.y, fmaf(qv.z, kv.z, fmaf(qv.w, kv.w, s[r]))));
      }
    }
    // Online softmax per row: rescale what was summed so far to the new running maximum.
    const int key = k0 + lane;
    float p[kRowsPerWarp];
#pragma unroll
    for (int r = 0; r < kRowsPerWarp; ++r) {
      p[r] = 0.0f;
      if (pos[r] < k0) continue;  // warp-uniform: this row sees none of these keys
      const bool visible = key <= pos[r];
      const float sc = visible ? s[r] * shape.scale : -INFINITY;
      const float m_new = fmaxf(m[r], warp_max(sc));  // finite: key k0 ≤ pos[r] is visible
      p[r] = visible ? expf(sc - m_new) : 0.0f;
      const float alpha = expf(m[r] - m_new);         // 0 on the first tile (m = -inf)
      l[r] = l[r] * alpha + warp_sum(p[r]);
      m[r] = m_new;
#pragma unroll
      for (int i = 0; i < kDims; ++i) acc[r][i] *= alpha;
    }
    // acc += p · v: each lane owns kDims output columns; key j's probabilities arrive by shuffle.
    const int j_end = min(kKeyTile, k_len - k0);
    for (int j = 0; j < j_end; ++j) {
      float vv[kDims];
#pragma unroll
      for (int i = 0; i < kDims; ++i) {
        const int d = lane + 32 * i;
        vv[i] = d < hd ? vs[j * hd + d] : 0.0f;
      }
#pragma unroll
      for (int r = 0; r < kRowsPerWarp; ++r) {
        const float pj = __shfl_sync(kFull, p[r], j);
#pragma unroll
        for (int i = 0; i < kDims; ++i) acc[r][i] = fmaf(pj, vv[i], acc[r][i]);
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRowsPerWarp; ++r) {
    if (pos[r] < 0) continue;
    const int64_t row = q_begin + warp * kRowsPerWarp + r;
    T* o = out + row * out_stride + int64_t{h} * hd;
    const float inv = 1.0f / l[r];
#pragma unroll
    for (int i = 0; i < kDims; ++i) {
      const int d = lane + 32 * i;
      if (d < hd) o[d] = from_f32<T>(acc[r][i] * inv);
    }
  }
}

template <typename T, int kDims>
Status launch(const T* q, const T* k, const T* v, T* out, const AttentionShape& shape, const int32_t* q_offsets,
              const int32_t* q_positions, const int32_t* kv_offsets, const int32_t* tiles, int64_t n_tiles,
              cudaStream_t stream) {
  const size_t bytes = smem_bytes(shape.head_dim);
  // Past 48 KB a block's dynamic shared memory must be allowed explicitly (head_dim 128 needs 50 KB).
  EMBEDSERVE_CUDA_RETURN_IF_ERROR(cudaFuncSetAttribute(attention_kernel<T, kDims>,
                                                       cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                       static_cast<int>(bytes)));
  const dim3 grid(static_cast<unsigned>(n_tiles), static_cast<unsigned>(shape.heads), kAttentionQueryTile / kBlockRows);
  attention_kernel<T, kDims><<<grid, kWarps * 32, bytes, stream>>>(q, k, v, out, shape, q_offsets, q_positions,
                                                                   kv_offsets, tiles);
  return cuda_status(cudaGetLastError(), "attention launch");
}

}  // namespace

template <typename T>
Status attention(const T* q, const T* k, const T* v, T* out, const AttentionShape& shape, const int32_t* q_offsets,
                 const int32_t* q_positions, const int32_t* kv_offsets, const int32_t* tiles, int64_t n_tiles,
                 cudaStream_t stream) {
  if (shape.heads <= 0 || shape.kv_heads <= 0 || shape.heads % shape.kv_heads != 0 || shape.head_dim <= 0 ||
      shape.head_dim > 32 * kMaxDimsPerLane || shape.heads > 65535 || n_tiles < 0 || n_tiles > 0x7fffffff ||
      shape.q_stride < int64_t{shape.heads} * shape.head_dim || shape.kv_stride < int64_t{shape.kv_heads} * shape.head_dim)
    return invalid_argument("attention: unsupported shape (heads " + std::to_string(shape.heads) + ", kv heads " +
                            std::to_string(shape.kv_heads) + ", head_dim " + std::to_string(shape.head_dim) +
                            "; head_dim must be at most 256, strides at least a row)");
  if (n_tiles == 0) return Status();
  // bf16 at Qwen3's head sizes runs on tensor cores; f32 (the parity mode) and other sizes on CUDA cores.
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    // A call whose rows all see one key tile (a batch of queries or short texts) goes to the mma.sync kernel: the
    // Hopper kernel's persistent pipeline spends most of such a call filling and draining (a 17-token query: 6.3 µs
    // a layer on the 0.6B, ncu), and the one tile's values are the same bits in both kernels (the op suite checks it
    // row by row: a short sequence alone and in a batch with long ones), so the choice per call keeps a row's bits
    // independent of its batch.
    const bool one_tile = attention_one_tile_keys(shape.max_keys) > 0;
    if (!one_tile && attention_bf16_wgmma_supports(shape, q, k, v, out))
      return attention_bf16_wgmma(q, k, v, out, shape, q_offsets, q_positions, kv_offsets, tiles, n_tiles, stream);
    if (attention_bf16_mma_supports(shape, q, k, v, out))
      return attention_bf16_mma(q, k, v, out, shape, q_offsets, q_positions, kv_offsets, tiles, n_tiles, stream);
  }
  if (shape.head_dim <= 32 * 4)
    return launch<T, 4>(q, k, v, out, shape, q_offsets, q_positions, kv_offsets, tiles, n_tiles, stream);
  return launch<T, kMaxDimsPerLane>(q, k, v, out, shape, q_offsets, q_positions, kv_offsets, tiles, n_tiles, stream);
}

template Status attention<float>(const float*, const float*, const float*, float*, const AttentionShape&,
                                 const int32_t*, const int32_t*, const int32_t*, const int32_t*, int64_t,
                                 cudaStream_t);
template Status attention<__nv_bfloat16>(const __nv_bfloat16*, const __nv_bfloat16*, const __nv_bfloat16*,
                                         __nv_bfloat16*, const AttentionShape&, const int32_t*, const int32_t*,
                                         const int32_t*, const int32_t*, int64_t, cudaStream_t);

}  // namespace embedserve::cuda
