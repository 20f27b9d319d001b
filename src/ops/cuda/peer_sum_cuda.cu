// peer_sum: the group's barrier on flags in each GPU's memory, then a sum of every rank's partial in rank order,
// alone or with the residual add and the norm after it.
#include <cuda_bf16.h>

#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_dtype.h"
#include "ops/cuda/norm_row.cuh"
#include "ops/cuda/peer_sum_cuda.h"

namespace embedserve::ops::cuda_backend {
namespace {

using cuda::from_f32;
using cuda::kNormPack;
using cuda::kNormThreads;
using cuda::NormPack;
using cuda::round_to;
using cuda::to_f32;

// The flag protocol's two accesses, at system scope: a flag another GPU writes is read through NVLink.
__device__ __forceinline__ void store_release(uint32_t* p, uint32_t v) {
  asm volatile("st.release.sys.global.u32 [%0], %1;" ::"l"(p), "r"(v) : "memory");
}
__device__ __forceinline__ uint32_t load_acquire(const uint32_t* p) {
  uint32_t v;
  asm volatile("ld.acquire.sys.global.u32 %0, [%1];" : "=r"(v) : "l"(p) : "memory");
  return v;
}

// One block of one thread per rank. Thread q writes this sum's epoch into rank q's flag for this rank, then waits
// for rank q's into this rank's flags. A spinning wait reads the abort flag now and then: an aborted group's
// ranks set their skip word and stop waiting.
__global__ void peer_barrier_kernel(const PeerSumArgs a) {
  const int q = static_cast<int>(threadIdx.x);
  if (q >= a.ranks || q == a.rank) return;
  store_release(a.flags[q] + a.rank, a.epoch);
  const uint32_t* mine = a.flags[a.rank] + q;
  // Signed difference: epochs wrap after 2^32 sums, and no rank is more than one sum ahead of another.
  for (uint32_t spins = 1; static_cast<int32_t>(load_acquire(mine) - a.epoch) < 0; ++spins)
    if ((spins & 1023) == 0 && *a.abort) {
      a.flags[a.rank][kMaxPeerRanks] = 1;
      return;
    }
}

__device__ __forceinline__ bool skipped(const PeerSumArgs& a) {
  return *static_cast<volatile const uint32_t*>(a.flags[a.rank] + kMaxPeerRanks) != 0;
}

// Eight consecutive elements added into f32, and written back.
__device__ __forceinline__ void add8(float (&acc)[8], const float* p) {
  const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
  acc[0] += a.x, acc[1] += a.y, acc[2] += a.z, acc[3] += a.w, acc[4] += b.x, acc[5] += b.y, acc[6] += b.z, acc[7] += b.w;
}
__device__ __forceinline__ void add8(float (&acc)[8], const __nv_bfloat16* p) {
  const uint4 v = *reinterpret_cast<const uint4*>(p);
  const auto* h = reinterpret_cast<const __nv_bfloat162*>(&v);
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(h[i]);
    acc[2 * i] += f.x, acc[2 * i + 1] += f.y;
  }
}
__device__ __forceinline__ void store8(float* p, const float (&acc)[8]) {
  reinterpret_cast<float4*>(p)[0] = make_float4(acc[0], acc[1], acc[2], acc[3]);
  reinterpret_cast<float4*>(p)[1] = make_float4(acc[4], acc[5], acc[6], acc[7]);
}
__device__ __forceinline__ void store8(__nv_bfloat16* p, const float (&acc)[8]) {
  uint4 v;
  auto* h = reinterpret_cast<__nv_bfloat162*>(&v);
  for (int i = 0; i < 4; ++i) h[i] = __floats2bfloat162_rn(acc[2 * i], acc[2 * i + 1]);  // round to nearest even
  *reinterpret_cast<uint4*>(p) = v;
}

template <typename In>
__device__ __forceinline__ float sum_at(const PeerSumArgs& a, int64_t i) {
  float acc = 0.0f;
  for (int r = 0; r < a.ranks; ++r) acc += to_f32(static_cast<const In*>(a.partial[r])[i]);
  return acc;
}

template <typename In, typename Out, bool kVectors>
__global__ void __launch_bounds__(512) peer_sum_kernel(const PeerSumArgs a, Out* sum) {
  if (skipped(a)) return;
  const int64_t first = blockIdx.x * int64_t{blockDim.x} + threadIdx.x, stride = int64_t{gridDim.x} * blockDim.x;
  if constexpr (kVectors) {
    for (int64_t v = first; v < a.count / 8; v += stride) {
      float acc[8] = {};
      for (int r = 0; r < a.ranks; ++r) add8(acc, static_cast<const In*>(a.partial[r]) + v * 8);
      store8(sum + v * 8, acc);
    }
  } else {
    for (int64_t i = first; i < a.count; i += stride) sum[i] = from_f32<Out>(sum_at<In>(a, i));
  }
}

// add_rms_norm_kernel (rms_norm_cuda.cu) with its delta, T(Σ partials), made in registers: the same per-thread
// elements and order, so the same bits.
template <typename In, typename T, bool kPacked>
__global__ void __launch_bounds__(kNormThreads) peer_add_rms_norm_kernel(const PeerSumArgs a, T* residual,
                                                                         const T* __restrict__ w, T* out, int64_t cols,
                                                                         float eps) {
  if (skipped(a)) return;
  const int64_t at = blockIdx.x * cols;
  T* row = residual + at;
  if constexpr (kPacked) {
    auto* rp = reinterpret_cast<NormPack<T>*>(row);
    for (int64_t i = threadIdx.x; i < cols / kNormPack<T>; i += kNormThreads) {
      float acc[8] = {};
      for (int r = 0; r < a.ranks; ++r) add8(acc, static_cast<const In*>(a.partial[r]) + at + i * 8);
      NormPack<T> x = rp[i];
#pragma unroll
      for (int k = 0; k < kNormPack<T>; ++k) x.v[k] = from_f32<T>(to_f32(x.v[k]) + round_to<T>(acc[k]));
      rp[i] = x;
    }
  } else {
    for (int64_t c = threadIdx.x; c < cols; c += kNormThreads)
      row[c] = from_f32<T>(to_f32(row[c]) + round_to<T>(sum_at<In>(a, at + c)));
  }
  const float r = cuda::inverse_rms<T>(cuda::row_squares<T, kPacked>(row, cols), cols, eps);
  cuda::row_scale<T, kPacked>(row, w, r, out + at, cols);
}

Status barrier(const PeerSumArgs& a, cudaStream_t stream) {
  if (a.ranks < 2 || a.ranks > kMaxPeerRanks || a.rank < 0 || a.rank >= a.ranks)
    return internal_error("peer_sum: rank " + std::to_string(a.rank) + " of " + std::to_string(a.ranks));
  peer_barrier_kernel<<<1, kMaxPeerRanks, 0, stream>>>(a);
  return cuda::cuda_status(cudaGetLastError(), "peer_sum barrier launch");
}

bool aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

bool partials_aligned(const PeerSumArgs& a) {
  for (int r = 0; r < a.ranks; ++r)
    if (!aligned(a.partial[r])) return false;
  return true;
}

template <typename In, typename Out>
void launch_sum(const PeerSumArgs& a, Out* sum, cudaStream_t stream) {
  const bool vectors = a.count % 8 == 0 && aligned(sum) && partials_aligned(a);
  const int64_t per_block = 512 * (vectors ? 8 : 1);
  const auto blocks = static_cast<unsigned>(std::min<int64_t>((a.count + per_block - 1) / per_block, 1024));
  if (vectors)
    peer_sum_kernel<In, Out, true><<<blocks, 512, 0, stream>>>(a, sum);
  else
    peer_sum_kernel<In, Out, false><<<blocks, 512, 0, stream>>>(a, sum);
}

}  // namespace

Status peer_sum(const PeerSumArgs& a, void* sum, bool f32_sum, cudaStream_t stream) {
  if (a.count == 0) return Status();  // every rank skips it alike: the same counts on every rank
  EMBEDSERVE_RETURN_IF_ERROR(barrier(a, stream));
  if (a.f32_partials && f32_sum)
    launch_sum<float, float>(a, static_cast<float*>(sum), stream);
  else if (a.f32_partials)
    launch_sum<float, __nv_bfloat16>(a, static_cast<__nv_bfloat16*>(sum), stream);
  else if (!f32_sum)
    launch_sum<__nv_bfloat16, __nv_bfloat16>(a, static_cast<__nv_bfloat16*>(sum), stream);
  else
    return internal_error("peer_sum: bf16 partials into an f32 sum");
  return cuda::cuda_status(cudaGetLastError(), "peer_sum launch");
}

template <typename T>
Status peer_sum_add_rms_norm(const PeerSumArgs& a, T* residual, const T* weight, T* out, int64_t rows, int64_t cols,
                             float eps, cudaStream_t stream) {
  if (rows * cols != a.count) return internal_error("peer_sum_add_rms_norm: rows × cols is not the partials' count");
  if (rows == 0) return Status();
  if (!a.f32_partials && sizeof(T) == 4) return internal_error("peer_sum_add_rms_norm: bf16 partials on an f32 context");
  EMBEDSERVE_RETURN_IF_ERROR(barrier(a, stream));
  const auto grid = static_cast<unsigned>(rows);
  // Packed as add_rms_norm packs (8 bf16 per load), and the partials too.
  const bool packed = kNormPack<T> == 8 && cols % 8 == 0 && aligned(residual) && aligned(weight) && aligned(out) &&
                      partials_aligned(a);
  const auto go = [&](auto in_tag) {
    using In = decltype(in_tag);
    if (packed)
      peer_add_rms_norm_kernel<In, T, true><<<grid, kNormThreads, 0, stream>>>(a, residual, weight, out, cols, eps);
    else
      peer_add_rms_norm_kernel<In, T, false><<<grid, kNormThreads, 0, stream>>>(a, residual, weight, out, cols, eps);
  };
  if (a.f32_partials)
    go(float{});
  else
    go(T{});
  return cuda::cuda_status(cudaGetLastError(), "peer_sum_add_rms_norm launch");
}

template Status peer_sum_add_rms_norm<float>(const PeerSumArgs&, float*, const float*, float*, int64_t, int64_t, float,
                                             cudaStream_t);
template Status peer_sum_add_rms_norm<__nv_bfloat16>(const PeerSumArgs&, __nv_bfloat16*, const __nv_bfloat16*,
                                                     __nv_bfloat16*, int64_t, int64_t, float, cudaStream_t);

}  // namespace embedserve::ops::cuda_backend
