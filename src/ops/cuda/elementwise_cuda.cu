// silu_mul, add, gather_rows: grid-stride loops, f32 arithmetic, rounded to T where PyTorch's op ends.
#include "ops/cuda/elementwise_cuda.h"

#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>

#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_dtype.h"
#include "ops/cuda/dependent_launch.cuh"
#include "ops/cuda/fast_divide.h"
#include "ops/cuda/fp8_row.cuh"
#include "ops/cuda/norm_row.cuh"

namespace embedserve::cuda {
namespace {

constexpr int kThreads = 256;

unsigned blocks_for(int64_t total) {
  return static_cast<unsigned>(std::min<int64_t>((total + kThreads - 1) / kThreads, 65536));
}

// One element of act_fn(gate) * up, every kernel below computing it this one way (so they agree bit for bit).
// expf, not __expf: the parity mode must stay within float32 rounding of torch's silu.
template <typename T>
__device__ __forceinline__ T silu_mul_one(float g, float u) {
  return from_f32<T>(round_to<T>(g / (1.0f + expf(-g))) * u);
}

template <typename T>
__global__ void silu_mul_kernel(const T* __restrict__ gate, const T* __restrict__ up, int64_t in_stride,
                                T* __restrict__ out, int64_t d, int64_t total) {
  let_dependents_start();  // a GEMM after this kernel may start streaming its weights
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / d, c = i % d;
    out[i] = silu_mul_one<T>(to_f32(gate[r * in_stride + c]), to_f32(up[r * in_stride + c]));
  }
}

// One block per row, so the block that wrote a row can quantise it for the FP8 down projection (fp8_row.cuh).
template <typename T>
__global__ void silu_mul_quantize_kernel(const T* __restrict__ gate, const T* __restrict__ up, int64_t in_stride,
                                         T* out, int64_t d, uint8_t* __restrict__ q, float* __restrict__ q_scales) {
  const int64_t r = blockIdx.x;
  for (int64_t c = threadIdx.x; c < d; c += kThreads)
    out[r * d + c] = silu_mul_one<T>(to_f32(gate[r * in_stride + c]), to_f32(up[r * in_stride + c]));
  quantize_written_row<T>(out + r * d, d, kThreads, q + r * d, q_scales + r);
}

// The same for bf16 rows of at most kHeld · kThreads packs of 8 (d ≤ 16,384 with kHeld 8: every Qwen3 size's
// intermediate width), each thread holding its packs from the SiLU·mul to the quantisation: 16-byte loads and
// stores, and the row not read back from memory. Each element goes through silu_mul_one and quantize_held_row gives
// quantize_written_row's codes and scale, so the bits are those of silu_mul_quantize_kernel (ncu on the 4B's
// 16,384-token batch in fp8: that kernel took 14 % of the batch, 2.4× the bf16 SwiGLU pass, on 2-byte accesses).
template <int kHeld>
__global__ void __launch_bounds__(kThreads)
    silu_mul_quantize_held_kernel(const __nv_bfloat16* __restrict__ gate, const __nv_bfloat16* __restrict__ up,
                                  int64_t in_stride, __nv_bfloat16* __restrict__ out, int64_t d,
                                  uint8_t* __restrict__ q, float* __restrict__ q_scales, bool write_out) {
  using Pack = NormPack<__nv_bfloat16>;
  const int64_t r = blockIdx.x;
  const int packs = static_cast<int>(d / 8);
  const auto* g = reinterpret_cast<const Pack*>(gate + r * in_stride);
  const auto* u = reinterpret_cast<const Pack*>(up + r * in_stride);
  auto* o = reinterpret_cast<Pack*>(out + r * d);
  Pack held[kHeld];
#pragma unroll
  for (int j = 0; j < kHeld; ++j) {
    const int i = static_cast<int>(threadIdx.x) + j * kThreads;
    if (i >= packs) break;
    const Pack gp = g[i], up_pack = u[i];
#pragma unroll
    for (int e = 0; e < 8; ++e) held[j].v[e] = silu_mul_one<__nv_bfloat16>(to_f32(gp.v[e]), to_f32(up_pack.v[e]));
    if (write_out) o[i] = held[j];  // the same for every thread of the launch
  }
  quantize_held_row<kHeld>(held, packs, kThreads, q + r * d, q_scales + r);
}

// 16-byte versions for rows that allow them (every real model's): one load moves 8 bf16 or 4 f32, so these
// memory-bound ops run near bandwidth instead of at 2-byte transactions.
template <typename T>
constexpr int kPack = 16 / sizeof(T);

// Packs are counted in 32 bits (the launcher checks that they fit) and split into row and column by FastDivide: the
// pass is bound by issued instructions, and a 64-bit division per pack was a large share of them.
template <typename T>
__global__ void silu_mul_vec_kernel(const T* __restrict__ gate, const T* __restrict__ up, int64_t in_stride,
                                    T* __restrict__ out, FastDivide per_row, uint32_t packs) {
  let_dependents_start();  // a GEMM after this kernel may start streaming its weights
  const int64_t d = int64_t{per_row.divisor()} * kPack<T>;
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < packs; i += gridDim.x * blockDim.x) {
    const uint32_t row = per_row.quotient(i);
    const int64_t r = row, c = int64_t{i - row * per_row.divisor()} * kPack<T>;
    const uint4 g4 = *reinterpret_cast<const uint4*>(gate + r * in_stride + c);
    const uint4 u4 = *reinterpret_cast<const uint4*>(up + r * in_stride + c);
    uint4 o4;
    const T* g = reinterpret_cast<const T*>(&g4);
    const T* u = reinterpret_cast<const T*>(&u4);
    T* o = reinterpret_cast<T*>(&o4);
#pragma unroll
    for (int e = 0; e < kPack<T>; ++e) o[e] = silu_mul_one<T>(to_f32(g[e]), to_f32(u[e]));
    *reinterpret_cast<uint4*>(out + r * d + c) = o4;
  }
}

template <typename T>
__global__ void add_vec_kernel(T* __restrict__ x, const T* __restrict__ y, int64_t packs) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < packs; i += int64_t{gridDim.x} * blockDim.x) {
    uint4 a4 = reinterpret_cast<const uint4*>(x)[i];
    const uint4 b4 = reinterpret_cast<const uint4*>(y)[i];
    T* a = reinterpret_cast<T*>(&a4);
    const T* b = reinterpret_cast<const T*>(&b4);
#pragma unroll
    for (int e = 0; e < kPack<T>; ++e) a[e] = from_f32<T>(to_f32(a[e]) + to_f32(b[e]));
    reinterpret_cast<uint4*>(x)[i] = a4;
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

template <typename T>
__global__ void add_kernel(T* __restrict__ x, const T* __restrict__ y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x)
    x[i] = from_f32<T>(to_f32(x[i]) + to_f32(y[i]));
}

template <typename T>
__global__ void gather_kernel(const T* __restrict__ x, int64_t dim, const int32_t* __restrict__ rows, int64_t total,
                              T* __restrict__ out) {
  let_dependents_start();  // a GEMM after this kernel may start streaming its weights
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < total; i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = i / dim, c = i % dim;
    out[i] = x[int64_t{rows[r]} * dim + c];
  }
}

}  // namespace

template <typename T>
Status silu_mul(const T* gate, const T* up, int64_t in_stride, T* out, int64_t n, int64_t d, cudaStream_t stream,
                uint8_t* q, float* q_scales, bool write_out) {
  if (n < 0 || d <= 0 || in_stride < d) return invalid_argument("silu_mul: bad shape");
  if (n == 0) return Status();
  if (q) {
    if (n > (int64_t{1} << 31) - 1) return invalid_argument("silu_mul: too many rows");
    const auto grid = static_cast<unsigned>(n);
    if constexpr (std::is_same_v<T, __nv_bfloat16>) {
      const int64_t held = (d / 8 + kThreads - 1) / kThreads;  // packs per thread
      if (d % 8 == 0 && in_stride % 8 == 0 && aligned16(gate) && aligned16(up) && aligned16(out) &&
          reinterpret_cast<uintptr_t>(q) % 8 == 0 && held <= 8) {
        using Kernel = void (*)(const T*, const T*, int64_t, T*, int64_t, uint8_t*, float*, bool);
        const Kernel by_held[] = {silu_mul_quantize_held_kernel<1>, silu_mul_quantize_held_kernel<2>,
                                  silu_mul_quantize_held_kernel<3>, silu_mul_quantize_held_kernel<4>,
                                  silu_mul_quantize_held_kernel<5>, silu_mul_quantize_held_kernel<6>,
                                  silu_mul_quantize_held_kernel<7>, silu_mul_quantize_held_kernel<8>};
        by_held[held - 1]<<<grid, kThreads, 0, stream>>>(gate, up, in_stride, out, d, q, q_scales, write_out);
        return cuda_status(cudaGetLastError(), "silu_mul (quantising) launch");
      }
    }
    silu_mul_quantize_kernel<<<grid, kThreads, 0, stream>>>(gate, up, in_stride, out, d, q, q_scales);
    return cuda_status(cudaGetLastError(), "silu_mul (quantising) launch");
  }
  // The 16-byte path counts its packs below 2^31 (17 G elements, past any batch's activations); else the scalar one.
  const int64_t packs = n * d / kPack<T>;
  if (d % kPack<T> == 0 && in_stride % kPack<T> == 0 && aligned16(gate) && aligned16(up) && aligned16(out) &&
      packs < (int64_t{1} << 31))
    silu_mul_vec_kernel<<<blocks_for(packs), kThreads, 0, stream>>>(
        gate, up, in_stride, out, FastDivide(static_cast<uint32_t>(d / kPack<T>)), static_cast<uint32_t>(packs));
  else
    silu_mul_kernel<<<blocks_for(n * d), kThreads, 0, stream>>>(gate, up, in_stride, out, d, n * d);
  return cuda_status(cudaGetLastError(), "silu_mul launch");
}

template <typename T>
Status add(T* x, const T* y, int64_t n, cudaStream_t stream) {
  if (n < 0) return invalid_argument("add: negative length");
  if (n == 0) return Status();
  if (n % kPack<T> == 0 && aligned16(x) && aligned16(y))
    add_vec_kernel<<<blocks_for(n / kPack<T>), kThreads, 0, stream>>>(x, y, n / kPack<T>);
  else
    add_kernel<<<blocks_for(n), kThreads, 0, stream>>>(x, y, n);
  return cuda_status(cudaGetLastError(), "add launch");
}

template <typename T>
Status gather_rows(const T* x, int64_t dim, const int32_t* rows, int64_t n_rows, T* out, cudaStream_t stream) {
  if (n_rows < 0 || dim <= 0) return invalid_argument("gather_rows: bad shape");
  if (n_rows == 0) return Status();
  gather_kernel<<<blocks_for(n_rows * dim), kThreads, 0, stream>>>(x, dim, rows, n_rows * dim, out);
  return cuda_status(cudaGetLastError(), "gather_rows launch");
}

#define EMBEDSERVE_INSTANTIATE(T)                                                                         \
  template Status silu_mul<T>(const T*, const T*, int64_t, T*, int64_t, int64_t, cudaStream_t, uint8_t*, float*, \
                              bool);                                                                       \
  template Status add<T>(T*, const T*, int64_t, cudaStream_t);                                         \
  template Status gather_rows<T>(const T*, int64_t, const int32_t*, int64_t, T*, cudaStream_t);
EMBEDSERVE_INSTANTIATE(float)
EMBEDSERVE_INSTANTIATE(__nv_bfloat16)
#undef EMBEDSERVE_INSTANTIATE

}  // namespace embedserve::cuda
