// RMSNorm kernels: plain, fused with the residual add before it, and fused with RoPE for q/k (one block per row,
// the row helpers of norm_row.cuh, so each fused kernel gives bitwise what the ops it replaces give).
#include "ops/cuda/rms_norm_cuda.h"

#include <string>
#include <type_traits>

#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_dtype.h"
#include "ops/cuda/dependent_launch.cuh"
#include "ops/cuda/fp8_row.cuh"
#include "ops/cuda/norm_row.cuh"

namespace embedserve::cuda {
namespace {

template <typename T, bool kPacked>
__global__ void __launch_bounds__(kNormThreads) rms_norm_kernel(const T* __restrict__ x, const T* __restrict__ w,
                                                                T* out, int64_t cols, float eps) {
  let_dependents_start();  // a GEMM after this kernel may start streaming its weights
  const T* row = x + blockIdx.x * cols;
  const float r = inverse_rms<T>(row_squares<T, kPacked>(row, cols), cols, eps);
  row_scale<T, kPacked>(row, w, r, out + blockIdx.x * cols, cols);
}

// residual = T(residual + delta), then out = rms_norm(residual): each thread writes, then re-reads, only its own
// elements of the row, so no barrier is needed between the add and the norm. With q set (an FP8 GEMM reads out
// next), out's row is also quantised to e4m3 into q, its scale into q_scales.
template <typename T, bool kPacked>
__global__ void __launch_bounds__(kNormThreads) add_rms_norm_kernel(T* residual, const T* delta, const T* __restrict__ w,
                                                                    T* out, int64_t cols, float eps, uint8_t* q,
                                                                    float* q_scales) {
  let_dependents_start();  // a GEMM after this kernel may start streaming its weights
  T* row = residual + blockIdx.x * cols;
  const T* d = delta + blockIdx.x * cols;
  if constexpr (kPacked) {
    auto* rp = reinterpret_cast<NormPack<T>*>(row);
    const auto* dp = reinterpret_cast<const NormPack<T>*>(d);
    for (int64_t i = threadIdx.x; i < cols / kNormPack<T>; i += kNormThreads) {
      const NormPack<T> a = rp[i], b = dp[i];
      rp[i] = add_pack<T>(a, b);
    }
  } else {
    for (int64_t c = threadIdx.x; c < cols; c += kNormThreads) row[c] = from_f32<T>(to_f32(row[c]) + to_f32(d[c]));
  }
  const float r = inverse_rms<T>(row_squares<T, kPacked>(row, cols), cols, eps);
  row_scale<T, kPacked>(row, w, r, out + blockIdx.x * cols, cols);
  if (q) quantize_written_row<T>(out + blockIdx.x * cols, cols, kNormThreads, q + blockIdx.x * cols, q_scales + blockIdx.x);
}

// The same for a bf16 row of at most kHeld · kNormThreads packs (hidden sizes up to 4,096 with kHeld 2: every Qwen3
// size): each thread keeps its packs of the sum in registers from the add to the scale, instead of reading the row
// it just wrote twice more from memory (the pass is short of issue slots and load throughput, not of DRAM
// bandwidth). Each thread takes the packs row_squares and row_scale give it (t, t + kNormThreads, ...), in their
// order and through the same per-pack helpers, so the result is the bits of add_rms_norm_kernel<T, true>.
template <typename T, int kHeld>
__global__ void __launch_bounds__(kNormThreads) add_rms_norm_held_kernel(T* residual, const T* delta,
                                                                         const T* __restrict__ w, T* out, int64_t cols,
                                                                         float eps, uint8_t* q, float* q_scales) {
  let_dependents_start();  // a GEMM after this kernel may start streaming its weights
  auto* row = reinterpret_cast<NormPack<T>*>(residual + blockIdx.x * cols);
  const auto* d = reinterpret_cast<const NormPack<T>*>(delta + blockIdx.x * cols);
  const auto* wp = reinterpret_cast<const NormPack<T>*>(w);
  auto* op = reinterpret_cast<NormPack<T>*>(out + blockIdx.x * cols);
  const int packs = static_cast<int>(cols / kNormPack<T>);
  NormPack<T> sum[kHeld];
  float ss = 0.0f;
#pragma unroll
  for (int j = 0; j < kHeld; ++j) {
    const int i = threadIdx.x + j * kNormThreads;
    if (i >= packs) break;
    const NormPack<T> a = row[i], b = d[i];
    sum[j] = add_pack<T>(a, b);
    row[i] = sum[j];
  }
#pragma unroll
  for (int j = 0; j < kHeld; ++j) {
    if (threadIdx.x + j * kNormThreads >= packs) break;
    add_squares<T>(ss, sum[j]);
  }
  const float r = inverse_rms<T>(ss, cols, eps);
  NormPack<T> normed[kHeld];
#pragma unroll
  for (int j = 0; j < kHeld; ++j) {
    const int i = threadIdx.x + j * kNormThreads;
    if (i >= packs) break;
    const NormPack<T> wpack = wp[i];
    normed[j] = scale_pack<T>(sum[j], wpack, r);
    op[i] = normed[j];
  }
  // An FP8 GEMM reads out next: its codes from the packs held, as quantize_written_row would give them.
  if (q) quantize_held_row<kHeld>(normed, packs, kNormThreads, q + blockIdx.x * cols, q_scales + blockIdx.x);
}

// One block per (row, head): the head's q_norm/k_norm into shared memory, then RoPE from there (norm_row.cuh's
// rope_rotate) with its row's angles from the batch's table, written once.
template <typename T, bool kPacked>
__global__ void __launch_bounds__(kNormThreads) qk_norm_rope_kernel(T* x, const T* __restrict__ w,
                                                                    const float* __restrict__ cos_table,
                                                                    const float* __restrict__ sin_table, int64_t stride,
                                                                    int heads, int head_dim, float eps) {
  extern __shared__ __align__(16) unsigned char smem[];
  T* normed = reinterpret_cast<T*>(smem);
  const int64_t row_head = blockIdx.x;
  T* p = x + row_head / heads * stride + row_head % heads * head_dim;
  const float r = inverse_rms<T>(row_squares<T, kPacked>(p, head_dim), head_dim, eps);
  row_scale<T, kPacked>(p, w, r, normed, head_dim);
  __syncthreads();
  const int half = head_dim / 2;
  const int64_t angles = row_head / heads * half;  // the row's token's angles
  for (int f = threadIdx.x; f < half; f += kNormThreads) {
    const RopeAngle a{cos_table[angles + f], sin_table[angles + f]};
    const float x1 = to_f32(normed[f]), x2 = to_f32(normed[f + half]);
    p[f] = rope_rotate<T>(x1, x2, a, /*first_half=*/true);
    p[f + half] = rope_rotate<T>(x2, x1, a, /*first_half=*/false);
  }
}

// The same for head_dim 64, 128 or 256 (every Qwen3 size): a (row, head) spread over one warp, so all 32 lanes
// load (hd/32 elements each) instead of 16 of a 256-thread block; a head's halves sit in lanes 0–15 and 16–31, so
// each rotation pair meets through one shuffle. The sum of squares is reduced within the warp (its order differs
// from rms_norm's, so results agree with norm-then-rope to rounding, not bit for bit).
template <typename T, int kPerLane>
struct alignas(sizeof(T) * kPerLane) HeadLane {  // one lane's elements of a head
  T v[kPerLane];
};
template <int kPerLane>
struct alignas(sizeof(float) * (kPerLane < 4 ? kPerLane : 4)) LaneAngles {  // their cos (or sin), one vector load
  float v[kPerLane];
};

// One head of one row, normalised and rotated, from its lane's elements, weights and angles.
template <typename T, int kPerLane>
__device__ __forceinline__ HeadLane<T, kPerLane> norm_rope_head(const HeadLane<T, kPerLane>& in,
                                                                const HeadLane<T, kPerLane>& wl,
                                                                const LaneAngles<kPerLane>& cs,
                                                                const LaneAngles<kPerLane>& sn, bool first_half,
                                                                float eps) {
  constexpr int kHeadDim = 32 * kPerLane;
  float ss = 0.0f;
#pragma unroll
  for (int k = 0; k < kPerLane; ++k) ss += to_f32(in.v[k]) * to_f32(in.v[k]);
  for (int offset = 16; offset > 0; offset /= 2) ss += __shfl_xor_sync(0xffffffffu, ss, offset);
  const float r = rsqrtf(ss / static_cast<float>(kHeadDim) + eps);
  HeadLane<T, kPerLane> out;
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    // Two elements per instruction where both operands are already bf16 values: the product (or sum) of two bf16
    // values is exact in f32 (or, for a sum whose terms lie more than 15 binades apart, rounds to the larger
    // term either way), so bf16x2 arithmetic, which rounds the exact result once, gives the bits of the f32
    // operation rounded to bf16 that the scalar form below does (subnormal results aside). The pass was bound by
    // issued instructions (ncu, 0.6B's 16,384-token batch: 0.83 warps issued per scheduler per cycle, 72.5 µs);
    // this form issues fewer (0.65, 65.3 µs). The _rn forms are never contracted into FMAs, which would skip
    // the products' rounding.
#pragma unroll
    for (int k = 0; k < kPerLane; k += 2) {
      const __nv_bfloat162 x2{in.v[k], in.v[k + 1]}, w2{wl.v[k], wl.v[k + 1]};
      // Normalise and round (f32 products: r is not a bf16 value), then times the weight, rounded.
      const __nv_bfloat162 mine = __hmul2_rn(w2, __floats2bfloat162_rn(to_f32(x2.x) * r, to_f32(x2.y) * r));
      // The same frequencies in the other half, one shuffle for both.
      const __nv_bfloat162 other = __shfl_xor_sync(0xffffffffu, mine, 16);
      const __nv_bfloat162 cos2 = __floats2bfloat162_rn(cs.v[k], cs.v[k + 1]);  // exact: the tables hold bf16 values
      const __nv_bfloat162 sin2 = __floats2bfloat162_rn(sn.v[k], sn.v[k + 1]);
      // x1' = x1·cos + x2·(−sin), x2' = x2·cos + x1·sin: each product rounded, then the sum.
      const __nv_bfloat162 rot =
          __hadd2_rn(__hmul2_rn(mine, cos2), __hmul2_rn(other, first_half ? __hneg2(sin2) : sin2));
      out.v[k] = rot.x;
      out.v[k + 1] = rot.y;
    }
  } else {
#pragma unroll
    for (int k = 0; k < kPerLane; ++k) {
      // Qwen3RMSNorm's rounding (normalise, round to T, times the weight, round), then the rotation.
      const float mine = round_to<T>(to_f32(wl.v[k]) * round_to<T>(to_f32(in.v[k]) * r));
      const float other = __shfl_xor_sync(0xffffffffu, mine, 16);  // the same frequency in the other half
      out.v[k] = rope_rotate<T>(mine, other, RopeAngle{cs.v[k], sn.v[k]}, first_half);
    }
  }
  return out;
}

// Two tensors' heads (k and q of one batch) go in one launch: block (r, g) takes row r's heads 8g..8g+7 of a's
// heads followed by b's, two per warp. The grid's two dimensions name the row and the heads, so no thread divides
// to find them (the pass was bound by issued instructions: 94.5 → 74.0 µs without the division). Two heads per
// warp, both loaded before either is computed, share the row's angles and keep twice the bytes in flight: with
// the packed arithmetic above the pass waits on memory latency, not on issue (ncu: 0.65 warps issued per
// scheduler per cycle at 61 % of DRAM's peak with one head per warp, 65.3 µs; 73 %, 55.6 µs with two).
constexpr int kHeadsPerWarp = 2;
constexpr int kQkWarps = 4;
constexpr int kHeadsPerBlock = kHeadsPerWarp * kQkWarps;

template <typename T, int kPerLane>
__global__ void __launch_bounds__(kQkWarps * 32) qk_norm_rope_warp_kernel(NormRopeHeads<T> a, NormRopeHeads<T> b,
                                                                          const float* __restrict__ cos_table,
                                                                          const float* __restrict__ sin_table,
                                                                          float eps) {
  constexpr int kHalf = 16 * kPerLane;
  using Lane = HeadLane<T, kPerLane>;
  using Angles = LaneAngles<kPerLane>;
  const int lane = threadIdx.x % 32;
  const int heads = a.heads + b.heads;
  const int first = blockIdx.y * kHeadsPerBlock + threadIdx.x / 32 * kHeadsPerWarp;
  if (first >= heads) return;  // whole warps leave together: the shuffles stay full-warp
  const int64_t token = blockIdx.x;
  T* p[kHeadsPerWarp];
  Lane in[kHeadsPerWarp], wl[kHeadsPerWarp];
#pragma unroll
  for (int h = 0; h < kHeadsPerWarp; ++h) {
    // A warp past the last head redoes its first one and stores nothing for it (all its lanes alike).
    const int slot = first + h < heads ? first + h : first;
    const bool in_a = slot < a.heads;
    p[h] = (in_a ? a.x + token * a.stride : b.x + token * b.stride) + (in_a ? slot : slot - a.heads) * 32 * kPerLane;
    in[h] = reinterpret_cast<const Lane*>(p[h])[lane];
    wl[h] = reinterpret_cast<const Lane*>(in_a ? a.weight : b.weight)[lane];
  }
  // This lane's elements lane·kPerLane.. sit at frequencies (lane·kPerLane) % kHalf.., consecutive.
  const int64_t f0 = token * kHalf + (lane * kPerLane) % kHalf;
  const Angles cs = *reinterpret_cast<const Angles*>(cos_table + f0);
  const Angles sn = *reinterpret_cast<const Angles*>(sin_table + f0);
#pragma unroll
  for (int h = 0; h < kHeadsPerWarp; ++h) {
    const Lane out = norm_rope_head<T, kPerLane>(in[h], wl[h], cs, sn, lane < 16, eps);
    if (first + h < heads) reinterpret_cast<Lane*>(p[h])[lane] = out;
  }
}

template <typename T, int kPerLane>
Status launch_qk_norm_rope_warp(NormRopeHeads<T> a, NormRopeHeads<T> b, const float* cos_table, const float* sin_table,
                                int64_t n, float eps, cudaStream_t stream) {
  const int64_t groups = (int64_t{a.heads} + b.heads + kHeadsPerBlock - 1) / kHeadsPerBlock;
  if (groups > 65535) return invalid_argument("qk_norm_rope: more heads than one grid can hold");
  const dim3 grid(static_cast<unsigned>(n), static_cast<unsigned>(groups));
  qk_norm_rope_warp_kernel<T, kPerLane><<<grid, kQkWarps * 32, 0, stream>>>(a, b, cos_table, sin_table, eps);
  return cuda_status(cudaGetLastError(), "qk_norm_rope launch");
}

template <typename T>
bool packed(int64_t cols, std::initializer_list<const void*> ptrs) {
  if constexpr (kNormPack<T> == 1) {
    return false;
  } else {
    if (cols % kNormPack<T> != 0) return false;
    for (const void* p : ptrs)
      if (!norm_aligned16(p)) return false;
    return true;
  }
}

Status check_rows(const char* op, int64_t rows, int64_t cols) {
  if (rows < 0 || cols <= 0)
    return invalid_argument(std::string(op) + ": bad shape [" + std::to_string(rows) + ", " + std::to_string(cols) + "]");
  if (rows > 0x7fffffff) return out_of_range(std::string(op) + ": more rows than one grid can hold");
  return Status();
}

}  // namespace

template <typename T>
Status rms_norm(const T* x, const T* weight, T* out, int64_t rows, int64_t cols, float eps, cudaStream_t stream) {
  EMBEDSERVE_RETURN_IF_ERROR(check_rows("rms_norm", rows, cols));
  if (rows == 0) return Status();
  const auto grid = static_cast<unsigned>(rows);
  if (packed<T>(cols, {x, weight, out}))
    rms_norm_kernel<T, true><<<grid, kNormThreads, 0, stream>>>(x, weight, out, cols, eps);
  else
    rms_norm_kernel<T, false><<<grid, kNormThreads, 0, stream>>>(x, weight, out, cols, eps);
  return cuda_status(cudaGetLastError(), "rms_norm launch");
}

template <typename T>
Status add_rms_norm(T* residual, const T* delta, const T* weight, T* out, int64_t rows, int64_t cols, float eps,
                    cudaStream_t stream, uint8_t* q, float* q_scales) {
  EMBEDSERVE_RETURN_IF_ERROR(check_rows("add_rms_norm", rows, cols));
  if (rows == 0) return Status();
  const auto grid = static_cast<unsigned>(rows);
  const bool pack = packed<T>(cols, {residual, delta, weight, out});
  const int64_t packs = cols / kNormPack<T>;
  auto kernel = pack ? add_rms_norm_kernel<T, true> : add_rms_norm_kernel<T, false>;
  if constexpr (kNormPack<T> > 1) {
    const bool codes_aligned = reinterpret_cast<uintptr_t>(q) % 8 == 0;  // the held kernels store 8 codes at a time
    if (pack && codes_aligned && packs <= kNormThreads)
      kernel = add_rms_norm_held_kernel<T, 1>;
    else if (pack && codes_aligned && packs <= 2 * kNormThreads)
      kernel = add_rms_norm_held_kernel<T, 2>;
  }
  kernel<<<grid, kNormThreads, 0, stream>>>(residual, delta, weight, out, cols, eps, q, q_scales);
  return cuda_status(cudaGetLastError(), "add_rms_norm launch");
}

namespace {

// The warp kernel's lanes load hd/32 elements as one 16-byte vector: rows (and heads, hd elements) must keep that
// alignment.
template <typename T>
bool warp_lanes_aligned(const NormRopeHeads<T>& p) {
  return p.heads == 0 || (norm_aligned16(p.x) && norm_aligned16(p.weight) && p.stride * sizeof(T) % 16 == 0);
}

template <typename T>
Status check_heads(const NormRopeHeads<T>& p, int head_dim) {
  if (p.heads < 0 || (p.heads > 0 && p.stride < int64_t{p.heads} * head_dim))
    return invalid_argument("qk_norm_rope: bad shape");
  return Status();
}

}  // namespace

template <typename T>
Status qk_norm_rope(NormRopeHeads<T> a, NormRopeHeads<T> b, const float* cos_table, const float* sin_table, int64_t n,
                    int head_dim, float eps, cudaStream_t stream) {
  if (head_dim <= 0 || head_dim % 2 != 0) return invalid_argument("qk_norm_rope: bad shape");
  EMBEDSERVE_RETURN_IF_ERROR(check_heads(a, head_dim));
  EMBEDSERVE_RETURN_IF_ERROR(check_heads(b, head_dim));
  EMBEDSERVE_RETURN_IF_ERROR(check_rows("qk_norm_rope", n * (a.heads + b.heads), head_dim));
  if (n == 0 || a.heads + b.heads == 0) return Status();
  // The tables' rows are read as vectors of up to 4 floats.
  const bool tables_aligned = norm_aligned16(cos_table) && norm_aligned16(sin_table) && (head_dim / 2) % 4 == 0;
  if (tables_aligned && warp_lanes_aligned(a) && warp_lanes_aligned(b)) {
    if (head_dim == 64) return launch_qk_norm_rope_warp<T, 2>(a, b, cos_table, sin_table, n, eps, stream);
    if (head_dim == 128) return launch_qk_norm_rope_warp<T, 4>(a, b, cos_table, sin_table, n, eps, stream);
    if (head_dim == 256) return launch_qk_norm_rope_warp<T, 8>(a, b, cos_table, sin_table, n, eps, stream);
  }
  // Other head sizes: a block per (row, head), one launch per tensor.
  for (const NormRopeHeads<T>& p : {a, b}) {
    if (p.heads == 0) continue;
    const auto grid = static_cast<unsigned>(n * p.heads);
    const size_t smem = static_cast<size_t>(head_dim) * sizeof(T);
    if (p.stride * sizeof(T) % 16 == 0 && packed<T>(head_dim, {p.x, p.weight}))
      qk_norm_rope_kernel<T, true><<<grid, kNormThreads, smem, stream>>>(p.x, p.weight, cos_table, sin_table, p.stride,
                                                                         p.heads, head_dim, eps);
    else
      qk_norm_rope_kernel<T, false><<<grid, kNormThreads, smem, stream>>>(p.x, p.weight, cos_table, sin_table,
                                                                          p.stride, p.heads, head_dim, eps);
    EMBEDSERVE_RETURN_IF_ERROR(cuda_status(cudaGetLastError(), "qk_norm_rope launch"));
  }
  return Status();
}

namespace {

// One thread per (row, frequency): rope_angle's cos and sin, already rounded to T as the rotation uses them.
template <typename T>
__global__ void rope_tables_kernel(const int32_t* __restrict__ positions, const float* __restrict__ inv_freq,
                                   int64_t n, int half, float* __restrict__ cos_table, float* __restrict__ sin_table) {
  const int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  if (i >= n * half) return;
  const RopeAngle a = rope_angle<T>(static_cast<float>(positions[i / half]), inv_freq[i % half]);
  cos_table[i] = a.cos;
  sin_table[i] = a.sin;
}

}  // namespace

template <typename T>
Status rope_tables(const int32_t* positions, const float* inv_freq, int64_t n, int half, float* cos_table,
                   float* sin_table, cudaStream_t stream) {
  if (n < 0 || half <= 0 || n * half > (int64_t{1} << 40)) return invalid_argument("rope_tables: bad shape");
  if (n == 0) return Status();
  constexpr int kThreads = 256;
  const auto grid = static_cast<unsigned>((n * half + kThreads - 1) / kThreads);
  rope_tables_kernel<T><<<grid, kThreads, 0, stream>>>(positions, inv_freq, n, half, cos_table, sin_table);
  return cuda_status(cudaGetLastError(), "rope_tables launch");
}

#define EMBEDSERVE_INSTANTIATE(T)                                                                                   \
  template Status rms_norm<T>(const T*, const T*, T*, int64_t, int64_t, float, cudaStream_t);                      \
  template Status add_rms_norm<T>(T*, const T*, const T*, T*, int64_t, int64_t, float, cudaStream_t, uint8_t*, float*);               \
  template Status qk_norm_rope<T>(NormRopeHeads<T>, NormRopeHeads<T>, const float*, const float*, int64_t, int,      \
                                  float, cudaStream_t);                                                            \
  template Status rope_tables<T>(const int32_t*, const float*, int64_t, int, float*, float*, cudaStream_t);
EMBEDSERVE_INSTANTIATE(float)
EMBEDSERVE_INSTANTIATE(__nv_bfloat16)
#undef EMBEDSERVE_INSTANTIATE

}  // namespace embedserve::cuda
