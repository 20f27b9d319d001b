// RMSNorm kernel: one block per row, 16-byte loads when the row allows, warp-shuffle reduction.
#include "ops/cuda/rms_norm_cuda.h"

#include <string>

#include "ops/cuda/cuda_check.h"
#include "ops/cuda/cuda_dtype.h"

namespace embedserve::cuda {
namespace {

constexpr int kThreads = 256;  // 8 warps: enough loads in flight for hidden sizes 1024–4096

__device__ float block_sum(float v) {
  __shared__ float partial[kThreads / 32];
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < kThreads / 32 ? partial[lane] : 0.0f;
  if (warp == 0)
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  __shared__ float total;
  if (threadIdx.x == 0) total = v;
  __syncthreads();
  return total;
}

// Scalar path: any number of columns, any element type (f32 rows take it always: f32 is already the
// rounding of the reference, and a row of 4-byte loads is coalesced without packing).
template <typename T>
__global__ void rms_norm_scalar(const T* __restrict__ x, const T* __restrict__ w, T* out, int64_t cols, float eps) {
  const T* row = x + blockIdx.x * cols;
  T* orow = out + blockIdx.x * cols;
  float ss = 0.0f;
  for (int64_t c = threadIdx.x; c < cols; c += kThreads) {
    const float v = to_f32(row[c]);
    ss += v * v;
  }
  const float r = rsqrtf(block_sum(ss) / static_cast<float>(cols) + eps);
  for (int64_t c = threadIdx.x; c < cols; c += kThreads) {
    const float normed = round_to<T>(to_f32(row[c]) * r);
    orow[c] = from_f32<T>(to_f32(w[c]) * normed);
  }
}

// Vector path: cols % 8 == 0 and 16-byte aligned rows, so each thread moves 8 bf16 per load.
__global__ void rms_norm_vec8(const __nv_bfloat16* __restrict__ x, const __nv_bfloat16* __restrict__ w,
                              __nv_bfloat16* out, int64_t cols, float eps) {
  const int64_t n8 = cols / 8;
  const uint4* row = reinterpret_cast<const uint4*>(x + blockIdx.x * cols);
  const uint4* w8 = reinterpret_cast<const uint4*>(w);
  uint4* orow = reinterpret_cast<uint4*>(out + blockIdx.x * cols);
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < n8; i += kThreads) {
    uint4 pack = row[i];
    const __nv_bfloat16* v = reinterpret_cast<const __nv_bfloat16*>(&pack);
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      const float f = __bfloat162float(v[k]);
      ss += f * f;
    }
  }
  const float r = rsqrtf(block_sum(ss) / static_cast<float>(cols) + eps);
  for (int64_t i = threadIdx.x; i < n8; i += kThreads) {
    uint4 pack = row[i], wpack = w8[i], opack;
    const __nv_bfloat16* v = reinterpret_cast<const __nv_bfloat16*>(&pack);
    const __nv_bfloat16* wv = reinterpret_cast<const __nv_bfloat16*>(&wpack);
    __nv_bfloat16* o = reinterpret_cast<__nv_bfloat16*>(&opack);
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      const __nv_bfloat16 normed = __float2bfloat16(__bfloat162float(v[k]) * r);
      o[k] = __float2bfloat16(__bfloat162float(wv[k]) * __bfloat162float(normed));
    }
    orow[i] = opack;
  }
}

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

}  // namespace

Status rms_norm_bf16(const __nv_bfloat16* x, const __nv_bfloat16* weight, __nv_bfloat16* out, int64_t rows,
                     int64_t cols, float eps, cudaStream_t stream) {
  if (rows < 0 || cols <= 0) return invalid_argument("rms_norm_bf16: bad shape [" + std::to_string(rows) + ", " +
                                                      std::to_string(cols) + "]");
  if (rows == 0) return Status();
  if (rows > 0x7fffffff) return out_of_range("rms_norm_bf16: more rows than one grid can hold");
  const bool vec = cols % 8 == 0 && aligned16(x) && aligned16(weight) && aligned16(out);
  if (vec)
    rms_norm_vec8<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, weight, out, cols, eps);
  else
    rms_norm_scalar<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, weight, out, cols, eps);
  return cuda_status(cudaGetLastError(), "rms_norm_bf16 launch");
}

Status rms_norm_f32(const float* x, const float* weight, float* out, int64_t rows, int64_t cols, float eps,
                    cudaStream_t stream) {
  if (rows < 0 || cols <= 0) return invalid_argument("rms_norm_f32: bad shape [" + std::to_string(rows) + ", " +
                                                      std::to_string(cols) + "]");
  if (rows == 0) return Status();
  if (rows > 0x7fffffff) return out_of_range("rms_norm_f32: more rows than one grid can hold");
  rms_norm_scalar<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, weight, out, cols, eps);
  return cuda_status(cudaGetLastError(), "rms_norm_f32 launch");
}

}  // namespace embedserve::cuda
