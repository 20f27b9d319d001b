// attention_bf16_mma: FlashAttention-2's forward on mma.sync.m16n8k16 (bf16 in, f32 accumulators). One block of
// 2 warps per (32-query tile, head), each warp 16 query rows; key tiles of 64 are staged in shared memory, k as
// [key][dim] and v transposed to [dim][key], so both products read their B fragments as 32-bit pairs. The
// scores' accumulator fragments become the second product's A fragments in registers (no trip through memory).
#include "ops/cuda/attention_mma_cuda.h"

#include <cmath>
#include <cstdint>

#include "ops/cuda/cuda_check.h"

namespace embedserve::cuda {
namespace {

constexpr int kWarps = kAttentionQueryTile / 16;  // 2 warps × 16 rows = one attention tile
constexpr int kKeys = 64;                         // keys per shared-memory tile
constexpr unsigned kFull = 0xffffffffu;

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);  // .x (lo) in the low half
  return *reinterpret_cast<const uint32_t*>(&v);
}
__device__ __forceinline__ uint32_t load32(const __nv_bfloat16* p) { return *reinterpret_cast<const uint32_t*>(p); }

// d += a · b for one 16×8×16 tile; fragment layouts as in the PTX ISA (groupID = lane / 4, tid = lane % 4).
__device__ __forceinline__ void mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <int kHd>
__global__ void __launch_bounds__(kWarps * 32)
    attention_mma_kernel(const __nv_bfloat16* __restrict__ q, const __nv_bfloat16* __restrict__ k,
                         const __nv_bfloat16* __restrict__ v, __nv_bfloat16* __restrict__ out, AttentionShape shape,
                         const int32_t* __restrict__ q_offsets, const int32_t* __restrict__ q_positions,
                         const int32_t* __restrict__ kv_offsets, const int32_t* __restrict__ tiles) {
  // Rows padded by 8 bf16 (16 bytes): the 8 row groups of a fragment load land in distinct banks.
  constexpr int kKStride = kHd + 8, kVStride = kKeys + 8;
  __shared__ alignas(16) __nv_bfloat16 ks[kKeys * kKStride];  // bf16 [64 keys, hd]
  __shared__ alignas(16) __nv_bfloat16 vt[kHd * kVStride];    // bf16 [hd, 64 keys]
  const AttentionTile tile = attention_tile(shape, q_offsets, q_positions, kv_offsets, tiles);
  const int seq = tile.seq, q_begin = tile.q_begin, q_end = tile.q_end, n_rows = tile.n_rows;
  const int h = tile.head, kvh = tile.kv_head, k_len = tile.k_len;
  const int64_t kv_begin = tile.kv_begin;
  const int64_t q_stride = int64_t{shape.heads} * kHd, kv_stride = int64_t{shape.kv_heads} * kHd;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int r_lo = warp * 16 + g, r_hi = r_lo + 8;  // this thread's two rows of the tile
  const int pos_lo = r_lo < n_rows ? q_positions[q_begin + r_lo] : -1;
  const int pos_hi = r_hi < n_rows ? q_positions[q_begin + r_hi] : -1;
  int warp_last = max(pos_lo, pos_hi);
  for (int o = 16; o > 0; o /= 2) warp_last = max(warp_last, __shfl_xor_sync(kFull, warp_last, o));

  // q as A fragments, for the whole head: row g / g+8, columns 2t, 2t+1 (+8).
  uint32_t qa[kHd / 16][4];
  const __nv_bfloat16* q_lo = q + (q_begin + r_lo) * q_stride + int64_t{h} * kHd;
  const __nv_bfloat16* q_hi = q + (q_begin + r_hi) * q_stride + int64_t{h} * kHd;
#pragma unroll
  for (int s = 0; s < kHd / 16; ++s) {
    const int c = s * 16 + 2 * t;
    qa[s][0] = pos_lo >= 0 ? load32(q_lo + c) : 0u;
    qa[s][1] = pos_hi >= 0 ? load32(q_hi + c) : 0u;
    qa[s][2] = pos_lo >= 0 ? load32(q_lo + c + 8) : 0u;
    qa[s][3] = pos_hi >= 0 ? load32(q_hi + c + 8) : 0u;
  }
  float o[kHd / 8][4];
#pragma unroll
  for (int n = 0; n < kHd / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m_lo = -INFINITY, m_hi = -INFINITY, l_lo = 0.0f, l_hi = 0.0f;
  const float scale_log2 = shape.scale * 1.4426950408889634f;  // softmax in base 2: exp(x) = exp2(x · log2 e)

  for (int k0 = 0; k0 < k_len; k0 += kKeys) {
    __syncthreads();  // the previous tile is consumed
    for (int c = threadIdx.x; c < kKeys * kHd / 8; c += kWarps * 32) {
      const int j = c / (kHd / 8), d = (c % (kHd / 8)) * 8;
      uint4 kk = make_uint4(0, 0, 0, 0), vv = make_uint4(0, 0, 0, 0);  // keys past the end: zeros, not NaN
      if (k0 + j < k_len) {
        const int64_t off = (kv_begin + k0 + j) * kv_stride + int64_t{kvh} * kHd + d;
        kk = *reinterpret_cast<const uint4*>(k + off);
        vv = *reinterpret_cast<const uint4*>(v + off);
      }
      *reinterpret_cast<uint4*>(ks + j * kKStride + d) = kk;
      const __nv_bfloat16* ve = reinterpret_cast<const __nv_bfloat16*>(&vv);
#pragma unroll
      for (int e = 0; e < 8; ++e) vt[(d + e) * kVStride + j] = ve[e];
    }
    __syncthreads();
    if (k0 > warp_last) continue;  // warp-uniform: no row of this warp sees these keys

    // s = q · kᵀ: 8 fragments of 8 keys; B (k = dim, n = key) is k's row read as pairs.
    float s[kKeys / 8][4];
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
    for (int kd = 0; kd < kHd / 16; ++kd)
#pragma unroll
      for (int n = 0; n < kKeys / 8; ++n) {
        const __nv_bfloat16* kp = ks + (n * 8 + g) * kKStride + kd * 16 + 2 * t;
        mma(s[n], qa[kd], load32(kp), load32(kp + 8));
      }
    // Causal mask, scale, and the running maxima of rows g and g+8 (shared by the 4 threads of a group).
    float mx_lo = -INFINITY, mx_hi = -INFINITY;
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int key = k0 + n * 8 + 2 * t + e;
        s[n][e] = key <= pos_lo ? s[n][e] * scale_log2 : -INFINITY;
        s[n][2 + e] = key <= pos_hi ? s[n][2 + e] * scale_log2 : -INFINITY;
        mx_lo = fmaxf(mx_lo, s[n][e]);
        mx_hi = fmaxf(mx_hi, s[n][2 + e]);
      }
    for (int x = 1; x < 4; x *= 2) {
      mx_lo = fmaxf(mx_lo, __shfl_xor_sync(kFull, mx_lo, x));
      mx_hi = fmaxf(mx_hi, __shfl_xor_sync(kFull, mx_hi, x));
    }
    const float new_lo = fmaxf(m_lo, mx_lo), new_hi = fmaxf(m_hi, mx_hi);
    // A row that has seen no key yet (or is past the tile's end) keeps max -inf: subtract 0 instead, so
    // exp2 gives 0, never NaN.
    const float base_lo = new_lo == -INFINITY ? 0.0f : new_lo, base_hi = new_hi == -INFINITY ? 0.0f : new_hi;
    const float alpha_lo = exp2f(m_lo - base_lo), alpha_hi = exp2f(m_hi - base_hi);
    m_lo = new_lo;
    m_hi = new_hi;
    // p = exp2(s − max) in f32 for the sums; rounded to bf16 as the next product's A fragments.
    uint32_t pa[kKeys / 16][4];
    float sum_lo = 0.0f, sum_hi = 0.0f;
#pragma unroll
    for (int n = 0; n < kKeys / 8; ++n) {
      const float p0 = exp2f(s[n][0] - base_lo), p1 = exp2f(s[n][1] - base_lo);
      const float p2 = exp2f(s[n][2] - base_hi), p3 = exp2f(s[n][3] - base_hi);
      sum_lo += p0 + p1;
      sum_hi += p2 + p3;
      pa[n / 2][(n % 2) * 2] = pack_bf16(p0, p1);
      pa[n / 2][(n % 2) * 2 + 1] = pack_bf16(p2, p3);
    }
    l_lo = l_lo * alpha_lo + sum_lo;  // per-thread partial sums; the group's are added at the end
    l_hi = l_hi * alpha_hi + sum_hi;
#pragma unroll
    for (int n = 0; n < kHd / 8; ++n) {
      o[n][0] *= alpha_lo;
      o[n][1] *= alpha_lo;
      o[n][2] *= alpha_hi;
      o[n][3] *= alpha_hi;
    }
    // o += p · v: B (k = key, n = dim) is vᵀ's row read as pairs.
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk)
#pragma unroll
      for (int n = 0; n < kHd / 8; ++n) {
        const __nv_bfloat16* vp = vt + (n * 8 + g) * kVStride + kk * 16 + 2 * t;
        mma(o[n], pa[kk], load32(vp), load32(vp + 8));
      }
  }
  for (int x = 1; x < 4; x *= 2) {
    l_lo += __shfl_xor_sync(kFull, l_lo, x);
    l_hi += __shfl_xor_sync(kFull, l_hi, x);
  }
  __nv_bfloat16* o_lo = out + (q_begin + r_lo) * q_stride + int64_t{h} * kHd + 2 * t;
  __nv_bfloat16* o_hi = out + (q_begin + r_hi) * q_stride + int64_t{h} * kHd + 2 * t;
  const float inv_lo = 1.0f / l_lo, inv_hi = 1.0f / l_hi;
#pragma unroll
  for (int n = 0; n < kHd / 8; ++n) {
    if (pos_lo >= 0) *reinterpret_cast<uint32_t*>(o_lo + n * 8) = pack_bf16(o[n][0] * inv_lo, o[n][1] * inv_lo);
    if (pos_hi >= 0) *reinterpret_cast<uint32_t*>(o_hi + n * 8) = pack_bf16(o[n][2] * inv_hi, o[n][3] * inv_hi);
  }
}

bool aligned(const void* p, uintptr_t bytes) { return (reinterpret_cast<uintptr_t>(p) & (bytes - 1)) == 0; }

}  // namespace

bool attention_bf16_mma_supports(const AttentionShape& shape, const void* q, const void* k, const void* v,
                                 const void* out) {
  return (shape.head_dim == 64 || shape.head_dim == 128) && aligned(k, 16) && aligned(v, 16) && aligned(q, 4) &&
         aligned(out, 4);
}

Status attention_bf16_mma(const __nv_bfloat16* q, const __nv_bfloat16* k, const __nv_bfloat16* v, __nv_bfloat16* out,
                          const AttentionShape& shape, const int32_t* q_offsets, const int32_t* q_positions,
                          const int32_t* kv_offsets, const int32_t* tiles, int64_t n_tiles, cudaStream_t stream) {
  if (!attention_bf16_mma_supports(shape, q, k, v, out))
    return invalid_argument("attention_bf16_mma: head_dim must be 64 or 128 with aligned rows");
  if (n_tiles == 0) return Status();
  const dim3 grid(static_cast<unsigned>(n_tiles), static_cast<unsigned>(shape.heads));
  if (shape.head_dim == 128)
    attention_mma_kernel<128><<<grid, kWarps * 32, 0, stream>>>(q, k, v, out, shape, q_offsets, q_positions,
                                                                kv_offsets, tiles);
  else
    attention_mma_kernel<64><<<grid, kWarps * 32, 0, stream>>>(q, k, v, out, shape, q_offsets, q_positions,
                                                               kv_offsets, tiles);
  return cuda_status(cudaGetLastError(), "attention_bf16_mma launch");
}

}  // namespace embedserve::cuda
